"""Mode "Your app" in the launcher window (launcher/app_picker.py, launcher/start_progress.py).

Real Qt widgets offscreen. What a file holds is found by the real inspector
(`python -m serving.replica.app_target --json`) in a child process, on small Gradio apps written
into tmp_path; each check imports Gradio there (a few seconds). The supervisor is a fake
that speaks serving/core/events.py for mode app: phases, the `app` deployment's replicas
coming up one by one, apply requests (serving/core/apply_request.py) and stop.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from fakes import path as fake_path
from supervisor_run import free_port

from launcher import errors, machine
from launcher import settings as settings_mod
from launcher.app_inspector import Inspection
from launcher.icons import STATE_COLOURS
from launcher.model_catalog import ModelChoice
from launcher.serving_controller import ServingState
from launcher.session import SessionState
from launcher.settings import Settings
from launcher.start_progress import StartProgress
from launcher.supervisor_process import SupervisorProcess
from launcher.window import MainWindow
from serving.core.config import LaunchConfig, Mode
from serving.core.protocol import StatusEvent

pytestmark = pytest.mark.usefixtures("launcher_env")  # see conftest.py

CHECK_MS = 90_000  # one inspector run imports Gradio: a few seconds, more on a busy 2-core machine

CHOICES = [
    ModelChoice(name="smollm2-135m-instruct", kind="instruct", params_m=135, memory_mb=900),
    ModelChoice(name="t5-tiny", kind="seq2seq", params_m=1, memory_mb=400, source="cache"),
    ModelChoice(name="gpt-tiny", kind="causal", tasks=("fanout",), params_m=1, memory_mb=400, source="cache"),
]

BLOCKS = 'import gradio as gr\n\nwith gr.Blocks() as demo:\n    gr.Markdown("hello")\n'
BUILDER = 'import gradio as gr\n\n\ndef build():\n    return gr.Interface(lambda x: x, "textbox", "textbox")\n'
SYNTAX_ERROR = "import gradio as gr\n\ndef broken(:\n    pass\n"
MISSING_IMPORT = "import gradio as gr\nimport no_such_package_here\n"
NO_BLOCKS = "import gradio as gr\n\n\ndef greet(name):\n    return 'hello ' + name\n"

def _window(qtbot, settings: Settings | None = None) -> MainWindow:
    w = MainWindow(settings or Settings(), open_browser=False)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.form.catalog_loaded and w.form.machine_probed, timeout=5_000)
    return w


@pytest.fixture
def machine_4cpu(monkeypatch):
    """A known 4-CPU, no-GPU machine and catalog (as in test_launcher_window.py)."""
    monkeypatch.setattr(machine, "cpu_count", lambda: 4)
    monkeypatch.setattr(machine, "probe", lambda: machine.MachineInfo(4, 16 << 30, 8 << 30, ()))
    monkeypatch.setattr("launcher.model_catalog.load_choices", lambda: list(CHOICES))
    monkeypatch.setattr("launcher.model_catalog.resolve", lambda ref, mode, field: CHOICES[0])


@pytest.fixture
def windows(qtbot, machine_4cpu):
    """Makes windows; afterwards, no inspector child or fake supervisor is left running."""
    made: list[MainWindow] = []

    def make(settings: Settings | None = None) -> MainWindow:
        made.append(_window(qtbot, settings))
        return made[-1]

    yield make
    for w in made:
        w.form.app_row.inspector.shutdown()
        if w.controller is not None:
            w.controller.shutdown_now(wait_s=3)  # never leave a fake supervisor behind


@pytest.fixture
def window(windows, tmp_path, monkeypatch):
    """A window whose Start runs the fake app supervisor, on a free port."""
    monkeypatch.setenv("FAKE_STEP_S", "0.3")
    w = windows()
    w.session.controller_factory = lambda parent: SupervisorProcess(
        parent, command=[sys.executable, fake_path("serving_app")]
    )
    w.form.port.setValue(free_port())
    return w


def app_file(tmp_path, name: str, source: str) -> str:
    path = tmp_path / name
    path.write_text(source)
    return str(path)


def wait_checked(qtbot, w: MainWindow) -> Inspection:
    qtbot.waitUntil(lambda: w.form.app_row.current_result() is not None, timeout=CHECK_MS)
    return w.form.app_row.current_result()


def dialog_text() -> str:
    box = errors.last_dialog
    assert box is not None, "expected an error dialog"
    return f"{box.text()}\n{box.informativeText()}"


def _drop(widget, paths: list[str]) -> bool:
    """Drag `paths` (as a file manager does) onto `widget` and drop them if it accepts; True if it did."""
    from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(p) for p in paths])
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    enter = QDragEnterEvent(QPoint(5, 5), *args)
    QApplication.sendEvent(widget, enter)
    if not enter.isAccepted():
        return False
    drop = QDropEvent(QPointF(5, 5), *args)
    QApplication.sendEvent(widget, drop)
    return drop.isAccepted()


# ---- choosing and checking ----------------------------------------------------------------


def test_choosing_a_file_shows_what_it_holds(window, qtbot, tmp_path, monkeypatch):
    w = window
    path = app_file(tmp_path, "demo.py", BLOCKS)
    asked = []
    monkeypatch.setattr("launcher.app_picker.QFileDialog.getOpenFileName",
                        lambda *args: asked.append(args) or (path, ""))
    w.form.mode_app.setChecked(True)
    assert w.form.models_box.title() == "Your app" and w.form.app_row.isVisible()
    assert not w.form.slots_panel.isVisible() and not w.form.add_button.isVisible()
    assert w.form.app_row.found_text().startswith("Choose your app's .py file")

    w.form.app_row.choose.click()
    assert "*.py" in asked[0][-1], "the dialog offers Python files"
    assert w.form.app_row.text() == path
    assert w.form.app_row.found_text() == "Checking demo.py…", "said at once; the check runs in a child process"
    result = wait_checked(qtbot, w)
    assert result.ok and w.form.app_row.found_text() == "demo · gr.Blocks"
    assert STATE_COLOURS["error"] not in w.form.app_row.found.text()
    assert w.form.app_row.found.toolTip().startswith(path)

    # NAME after a colon picks a builder function.
    builder = app_file(tmp_path, "builder.py", BUILDER)
    w.form.app_row.set_target(builder + ":build")
    result = wait_checked(qtbot, w)
    assert result.ok and w.form.app_row.found_text() == "build() · gr.Interface"
    assert w.form.current_config().app.target == builder + ":build"


def test_a_serve_application_file_is_recognised_and_says_where_its_resources_are_set(window, qtbot, tmp_path):
    """Ray's guide's parallel example (a GradioIngress subclass bound to two model deployments)."""
    w = window
    w.form.mode_app.setChecked(True)
    w.form.app_row.set_target(str(Path(__file__).parent / "guide" / "demo_parallel.py"))
    result = wait_checked(qtbot, w)
    assert result.ok and result.serve_app, result
    assert w.form.app_row.found_text() == ("app · Serve app: MyGradioServer + 2 deployments\n"
                                           "deployed as the file declares its deployments: their CPUs, GPUs and "
                                           "replicas are set there")
    row = w.form.app_row
    assert not (row.cpus.isEnabled() or row.gpus.isEnabled() or row.replicas.isEnabled()), "they would not apply"
    w.form.app_row.set_target(app_file(tmp_path, "demo.py", BLOCKS))  # a plain Gradio app: they apply again
    assert wait_checked(qtbot, w).ok
    assert row.cpus.isEnabled() and row.replicas.isEnabled()


@pytest.mark.parametrize(
    "source, expected",
    [
        (SYNTAX_ERROR, ["app.py, line 3", "py_compile"]),
        (MISSING_IMPORT, ["app.py, line 2: imports 'no_such_package_here', which is not installed here",
                          "pip install no_such_package_here"]),
        (NO_BLOCKS, ["no gr.Blocks found at the top level", "functions: greet"]),
    ],
    ids=["syntax-error", "missing-import", "no-blocks"],
)
def test_a_broken_app_shows_the_error_and_start_is_refused(window, qtbot, tmp_path, source, expected):
    w = window
    launched = []
    fake = w.session.controller_factory
    w.session.controller_factory = lambda parent: launched.append(parent) or fake(parent)
    w.form.mode_app.setChecked(True)
    w.form.app_row.set_target(app_file(tmp_path, "app.py", source))
    result = wait_checked(qtbot, w)
    assert not result.ok and result.refuses_start
    for text in expected:
        assert text in w.form.app_row.found_text()
    assert STATE_COLOURS["error"] in w.form.app_row.found.text(), "said in the error colour"

    w.start_serving()
    qtbot.waitUntil(lambda: errors.last_dialog is not None, timeout=CHECK_MS)
    text = dialog_text()
    assert "Your app cannot be started" in text and expected[0] in text and expected[1] in text
    assert launched == [] and w.controller is None
    assert w.start_button.isEnabled() and w.state_text() == "Stopped"
    assert not w.start_progress.isVisible(), "a refused start shows no progress"


def test_a_missing_file_is_said_without_a_check_and_an_edited_file_is_checked_again(window, qtbot, tmp_path):
    w = window
    w.form.mode_app.setChecked(True)
    missing = str(tmp_path / "nowhere.py")
    w.form.app_row.set_target(missing)
    assert not w.form.app_row.inspector.busy(), "nothing to import"
    assert w.form.app_row.found_text().startswith(f"{missing} does not exist")
    w.start_serving()
    assert "does not exist" in dialog_text() and w.controller is None

    # Fixed in an editor: the watcher checks the file again without the window being touched.
    path = app_file(tmp_path, "app.py", SYNTAX_ERROR)
    w.form.app_row.set_target(path)
    assert not wait_checked(qtbot, w).ok
    with open(path, "w") as fh:
        fh.write(BLOCKS)
    qtbot.waitUntil(lambda: w.form.app_row.found_text() == "demo · gr.Blocks", timeout=CHECK_MS)


def test_relative_and_module_targets_are_stored_as_they_are_found(window, qtbot, tmp_path, monkeypatch):
    """The supervisor reads the config from the state folder: a target must not depend on where it runs."""
    w = window
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "ui.py").write_text(BLOCKS)
    app_file(tmp_path, "demo.py", BLOCKS)
    monkeypatch.chdir(tmp_path)
    w.form.mode_app.setChecked(True)
    w.form.app_row.target_box.setEditText("demo.py:demo")  # typed, relative to where the launcher runs
    spec = w.form.current_config().app
    assert spec.target == str(tmp_path / "demo.py") + ":demo" and spec.app_dir is None
    w.form.app_row.target_box.lineEdit().editingFinished.emit()
    assert w.form.app_row.text() == spec.target, "the field shows the path the app will be found at"

    w.form.app_row.set_target("pkg.ui:demo")
    spec = w.form.current_config().app
    assert spec.target == "pkg.ui:demo" and spec.app_dir == str(tmp_path), "a module runs where it was found"
    assert wait_checked(qtbot, w).ok and w.form.app_row.found_text() == "demo · gr.Blocks"

    # In a configuration file, relative to the file (as `gradio-serve up --config` reads it).
    (tmp_path / "elsewhere").mkdir()
    config_file = tmp_path / "elsewhere" / "app.json"
    config_file.write_text(json.dumps({"mode": "app", "app": {"target": "../demo.py", "replicas": 2}}))
    monkeypatch.setattr("launcher.dialogs.QFileDialog.getOpenFileName", lambda *args: (str(config_file), ""))
    w.load_config_action.trigger()
    spec = w.form.current_config().app
    assert spec.target == str(tmp_path / "demo.py") and spec.replicas == 2 and w.form.app_row.text() == spec.target


# ---- start, progress, open, apply, stop ---------------------------------------------------


def test_start_in_app_mode_hands_the_supervisor_the_app_and_the_progress_follows(window, qtbot, tmp_path):
    w = window
    path = app_file(tmp_path, "demo.py", BLOCKS)
    w.form.mode_app.setChecked(True)
    w.form.app_row.set_target(path)
    w.form.app_row.cpus.setValue(1.5)
    w.form.app_row.replicas.setValue(2)
    steps: list[tuple[str, int]] = []
    w.start_progress.step_changed.connect(lambda words, percent: steps.append((words, percent)))

    # Pressed while the file is still being checked: Start waits for the verdict.
    assert w.form.app_row.checking()
    w.start_serving()
    assert w.state_text() == "Checking…" and not w.start_button.isEnabled()
    assert w.start_progress.isVisible() and w.start_progress.words_text() == "Checking the configuration"
    qtbot.waitUntil(lambda: w.state_text().startswith(("Running", "Failed")), timeout=CHECK_MS)
    assert w.state_text().startswith("Running"), (errors.last_dialog and dialog_text(), w.log_view.plain_text())
    controller = w.controller
    try:
        config = json.loads(controller.config_file().read_text())
        assert config["mode"] == "app" and config["models"] == []
        assert config["app"]["target"] == path
        assert (config["app"]["num_cpus"], config["app"]["replicas"]) == (1.5, 2)
        assert w.settings.recent_apps[0] == path

        words = [text for text, _ in steps]
        expected = ["Checking the configuration", "Starting Ray", "Starting the app (0 of 2 replicas ready)",
                    "Starting the app (1 of 2 replicas ready)", "Starting the app (2 of 2 replicas ready)", "Ready"]
        assert [text for text in words if text in expected] == expected, words
        percents = [percent for _, percent in steps]
        assert percents == sorted(percents) and percents[-1] == 100, steps
        assert w.status_table.rows() == [(f"demo ({path})", "HEALTHY", "2/2", "")]

        # Ray's own output is one click away.
        w.start_progress.log_link.linkActivated.emit("log")
        assert w.splitter.sizes()[1] >= 120
        qtbot.waitUntil(lambda: not w.start_progress.isVisible(), timeout=10_000)

        opened = []
        w.browser.opener = lambda url: opened.append(url) or True
        w.open_button.click()
        assert opened == [controller.url] and str(w.form.port.value()) in controller.url

        # Apply: fewer replicas, in place; not a start, so no progress bar.
        w.form.app_row.replicas.setValue(1)
        assert w.apply_button.isEnabled() and w.apply_button.text() == "Apply changes"
        assert "Changes not applied yet" in w.pending_label.text()
        w.apply_button.click()
        qtbot.waitUntil(lambda: w.session.state is not SessionState.applying, timeout=20_000)
        assert "Applied in" in w.statusBar().currentMessage() and "demo.py" in w.statusBar().currentMessage()
        assert controller.running_config.app.replicas == 1 and not w.apply_button.isEnabled()
        assert not w.start_progress.isVisible()

        # A target that cannot load is refused before anything is sent.
        w.form.app_row.set_target(app_file(tmp_path, "broken.py", MISSING_IMPORT))
        assert not wait_checked(qtbot, w).ok
        assert w.apply_button.isEnabled()
        w.apply_changes()
        assert w.session.state is not SessionState.applying and "Your app cannot be applied" in dialog_text()
        assert "no_such_package_here" in dialog_text()
        assert controller.running_config.app.target == path
    finally:
        w.stop_serving()
        qtbot.waitUntil(lambda: w.state_text() == "Stopped", timeout=15_000)
    assert w.controller.state is ServingState.stopped and w.start_button.isEnabled()


def test_progress_words_for_models_and_for_a_failed_start(qtbot):
    p = StartProgress()
    qtbot.addWidget(p)
    seen = []
    p.step_changed.connect(lambda words, percent: seen.append(percent))
    p.begin(app=False, names=["t5-small", "gpt2"])
    assert not p.isHidden() and p.words_text() == "Checking the configuration"
    p.follow_state("starting")
    p.follow_phase("starting_cluster")
    assert p.words_text() == "Starting Ray"
    p.follow_phase("deploying")
    assert p.words_text() == "Loading t5-small, gpt2…"
    ingress = {"name": "GradioIngress", "label": "Gradio ingress", "model": "", "status": "HEALTHY",
               "replicas_running": 1, "replicas_target": 1}

    def model(i, running, target):
        return {"name": f"model{i}", "label": ["t5-small", "gpt2"][i], "model": "x", "status": "UPDATING",
                "replicas_running": running, "replicas_target": target}

    p.follow_status(StatusEvent(app_status="DEPLOYING", deployments=[ingress, model(0, 0, 1), model(1, 0, 2)]))
    assert p.words_text() == "Loading t5-small, gpt2 (0 of 3 replicas ready)", "the ingress is plumbing"
    p.follow_status(StatusEvent(app_status="DEPLOYING", deployments=[ingress, model(0, 1, 1), model(1, 1, 2)]))
    assert p.words_text() == "Loading t5-small, gpt2 (2 of 3 replicas ready)"
    assert seen == sorted(seen) and seen[-1] > seen[-2]
    stuck_at = p.value()

    # The supervisor fails: the bar stays where it stopped, in the error colour, until the next Start.
    p.follow_phase("error", "the app failed to deploy")
    p.follow_state("stopping")
    p.follow_state("error")
    assert not p.isHidden() and p.value() == stuck_at
    assert p.words_text().startswith("Failed while loading the models")
    assert STATE_COLOURS["error"] in p.words.text()

    p.begin(app=True, remote=True)
    assert p.words_text() == "Checking the configuration" and STATE_COLOURS["error"] not in p.words.text()
    p.follow_phase("starting_cluster")
    assert p.words_text() == "Connecting to the Ray cluster"
    p.follow_state("stopping")  # Stop pressed during the start
    assert p.isHidden()


# ---- dropping, remembering, switching --------------------------------------------------------


def test_dropping_a_py_file_switches_to_app_mode_and_sets_the_target(window, qtbot, tmp_path):
    w = window
    path = app_file(tmp_path, "demo.py", BLOCKS)
    notes = tmp_path / "notes.txt"
    notes.write_text("not an app")
    assert w.form.mode() is Mode.summarize
    assert not _drop(w, [str(notes)]), "only a .py file is taken"
    assert w.form.mode() is Mode.summarize

    assert _drop(w, [str(notes), path])
    assert w.form.mode() is Mode.app and w.form.app_row.text() == path
    assert w.settings.recent_apps[0] == path
    assert wait_checked(qtbot, w).ok and w.form.app_row.found_text() == "demo · gr.Blocks"
    assert w.form.current_config().app.target == path

    # Onto the target field itself (which would otherwise paste the file's URL as text).
    other = app_file(tmp_path, "other.py", BLOCKS)
    assert _drop(w.form.app_row.target_box.lineEdit(), [other])
    assert w.form.app_row.text() == other and w.settings.recent_apps[:2] == [other, path]


def test_recent_apps_are_offered_and_persist_across_a_settings_reload(window, windows, qtbot, tmp_path, monkeypatch):
    w = window
    first, second = app_file(tmp_path, "first.py", BLOCKS), app_file(tmp_path, "second.py", NO_BLOCKS)
    w.form.mode_app.setChecked(True)
    for path in (second, first):
        monkeypatch.setattr("launcher.app_picker.QFileDialog.getOpenFileName", lambda *args, p=path: (p, ""))
        w.form.app_row.choose.click()
    assert w.settings.recent_apps == [first, second], "most recent first; a chosen app is kept even if it fails"
    assert w.form.app_row.recent() == [first, second]
    w.save_settings()
    stored = json.loads(settings_mod.settings_path().read_text())
    assert stored["recent_apps"] == [first, second] and stored["config"]["mode"] == "app"

    loaded, message = settings_mod.load()
    assert message is None and loaded.recent_apps == [first, second]
    again = windows(loaded)
    assert again.form.mode() is Mode.app and again.form.app_row.text() == first
    assert again.form.app_row.recent() == [first, second]
    completer = again.form.app_row.target_box.completer()
    completer.setCompletionPrefix("second")  # a part of the name finds the path
    assert completer.currentCompletion() == second
    again.form.app_row.target_box.setCurrentIndex(1)  # picked from the dropdown
    assert again.form.app_row.text() == second and again.form.current_config().app.target == second

    # At most eight, each once; a hand-edited list keeps its usable entries.
    s = Settings()
    for i in list(range(12)) + [5]:
        settings_mod.remember_app(s, f"/apps/app{i}.py")
    assert s.recent_apps == ["/apps/app5.py"] + [f"/apps/app{i}.py" for i in (11, 10, 9, 8, 7, 6, 4)]
    assert settings_mod.from_dict({"recent_apps": ["/a.py", 3, "", "/b.py"]}).recent_apps == ["/a.py", "/b.py"]


def test_switching_modes_keeps_what_each_mode_holds(window, qtbot, tmp_path):
    w = window
    w.form.mode_fanout.setChecked(True)
    w.form.add_slot()
    w.form.rows[2].cpus.setValue(0.5)
    fanout = w.form.current_config()
    assert len(fanout.models) == 3

    w.form.mode_app.setChecked(True)
    assert not w.form.advanced_button.isVisible() and not w.form.add_button.isVisible()
    path = app_file(tmp_path, "demo.py", BLOCKS)
    w.form.app_row.set_target(path)
    # Bounded by the machine as the model rows are: 4 CPUs, no GPU.
    assert w.form.app_row.cpus.maximum() == 4 and not w.form.app_row.gpus.isEnabled()
    w.form.app_row.cpus.setValue(2)
    assert w.form.app_row.replicas.maximum() == 2
    w.form.app_row.replicas.setValue(2)
    app = w.form.current_config()
    assert app.mode is Mode.app and app.models == [] and app.app.target == path
    assert (app.app.num_cpus, app.app.replicas) == (2, 2)
    assert "Needs 4 of 4 CPUs" in w.form.resources_label.text()

    w.form.mode_summarize.setChecked(True)
    summary = w.form.current_config()
    assert summary.app is None and summary.models == fanout.models[:1] and w.form.slots_panel.isVisible()
    w.form.mode_app.setChecked(True)
    assert w.form.current_config() == app
    w.form.mode_fanout.setChecked(True)
    assert w.form.current_config() == fanout, "fan-out's three models came back"
    w.form.mode_app.setChecked(True)
    assert w.form.current_config() == app

    # A configuration in mode app (a file, or the running app's): shown, and what the row
    # does not show (autoscaling) is kept; the model rows stay for a switch back.
    loaded = LaunchConfig.from_dict({"mode": "app", "app": {
        "target": path, "num_cpus": 1, "autoscaling": {"min_replicas": 1, "max_replicas": 3}},
        "http": {"port": w.form.port.value()}})
    w.form.apply_config(loaded)
    assert w.form.current_config() == loaded and not w.form.app_row.replicas.isEnabled()
    assert "1 to 3 replicas" in w.form.app_row.replicas.toolTip()
    w.form.mode_fanout.setChecked(True)
    assert w.form.current_config() == fanout
    w.form.mode_app.setChecked(True)
    assert w.form.current_config() == loaded
    wait_checked(qtbot, w)  # the check in flight ends before the window does


def test_checking_an_app_imports_nothing_of_the_serving_stack_into_the_launcher(tmp_path):
    """The user's file, and Gradio with it, are imported in the inspector child only."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    path = app_file(tmp_path, "demo.py", BLOCKS)
    probe = textwrap.dedent(
        f"""
        import json, sys, time
        from PySide6.QtWidgets import QApplication
        app = QApplication(sys.argv[:1])
        from launcher.main_thread_gc import MainThreadGC
        collector = MainThreadGC(app)  # as launcher.app.main does
        from launcher.settings import Settings
        from launcher.window import MainWindow
        w = MainWindow(Settings(), open_browser=False)
        w.form.mode_app.setChecked(True)
        w.form.app_row.set_target({path!r})
        deadline = time.monotonic() + 90
        while w.form.app_row.current_result() is None and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.01)
        print(json.dumps({{"found": w.form.app_row.found_text(), "modules": sorted(sys.modules)}}))
        """
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", probe], cwd=root, env=env, capture_output=True, text=True,
                         check=False, timeout=180)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["found"] == "demo · gr.Blocks"
    leaked = sorted({m.split(".")[0] for m in result["modules"]} & {"gradio", "gradio_client", "ray", "torch",
                                                                     "transformers", "demo"})
    assert leaked == [], f"the launcher process imported {leaked}"
