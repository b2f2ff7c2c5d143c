"""Apply changes from the window to the running app (launcher/apply_changes.py).

Fast: the pending-change logic, the state machine's `deploying` after `running`, and the
window's whole Apply flow against a fake supervisor that speaks serving/core/apply_request.py's
protocol (a request file plus SIGUSR1; the answer as an `applied` event and in the status
record). Slow: the real supervisor, a tiny model swapped in place, gradio_client answering,
the GUI thread never stalled, and nothing left running.
"""

from __future__ import annotations

import os
import sys
import threading
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import psutil
import pytest
from fakes import path as fake_path
from questions import button, question
from supervisor_run import free_port

from launcher import errors, machine
from launcher.apply_changes import PendingChange, pending_change
from launcher.attached import AttachedSupervisor
from launcher.model_catalog import ModelChoice
from launcher.serving_controller import ServingState
from launcher.session import SessionState
from launcher.settings import Settings
from launcher.supervisor_process import SupervisorProcess
from serving.core import paths
from serving.core.config import LaunchConfig
from serving.core.protocol import SupervisorRecord

CHOICES = [
    ModelChoice(name="smollm2-135m-instruct", kind="instruct", params_m=135, memory_mb=900),
    ModelChoice(name="t5-tiny", kind="seq2seq", params_m=1, memory_mb=400, source="cache"),
]

pytestmark = pytest.mark.usefixtures("launcher_env")  # see conftest.py


# ---- the pending-change logic ----------------------------------------------------------


def _config(**changes) -> dict:
    data = LaunchConfig.from_dict({"models": [{"model": "t5-tiny", "num_cpus": 1}], "http": {"port": 8123}})
    data = data.model_dump(mode="json")
    for path, value in changes.items():
        *parents, leaf = path.split(".")
        target = data
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[leaf] = value
    return data


def test_pending_change_says_what_differs_and_what_needs_a_restart():
    running = LaunchConfig.from_dict(_config())
    assert pending_change(running, _config()) == PendingChange()
    assert pending_change(None, _config(**{"models.0.model": "other"})) == PendingChange(), "nothing known to compare"
    # Same values, written differently (an int for a float), are no change.
    assert not pending_change(running, _config(**{"models.0.num_cpus": 1})).differs
    # Serve can change these in place.
    for change in (
        {"models.0.model": "other"},
        {"models.0.replicas": 2},
        {"models.0.num_cpus": 0.5},
        {"models.0.dtype": "bfloat16"},
        {"mode": "fanout"},
    ):
        verdict = pending_change(running, _config(**change))
        assert verdict.differs and verdict.restart == (), change
    # These need a new proxy or cluster.
    assert pending_change(running, _config(**{"http.port": 8124})) == PendingChange(True, ("http",))
    assert pending_change(running, _config(**{"cluster.address": "auto"})) == PendingChange(True, ("cluster",))
    both = pending_change(running, _config(**{"http.port": 8124, "cluster.num_cpus": 2}))
    assert both.restart == ("cluster", "http") and "port" in both.restart_words() and "cluster" in both.restart_words()


# ---- the state machine: `deploying` after `running` is a change, not a start ------------


def test_deploying_after_running_keeps_the_app_running_and_marked_changing(qtbot):
    c = SupervisorProcess()
    states, changing, applied = [], [], []
    c.state_changed.connect(states.append)
    c.changing_changed.connect(changing.append)
    c.applied.connect(applied.append)
    for phase in ("validating", "starting_cluster", "deploying"):
        c.handle_event({"event": "phase", "phase": phase, "message": phase, "pid": 1234, "pgid": 1234})
    assert c.state is ServingState.starting and not c.changing, "before the first running it is a start"
    c.handle_event({"event": "phase", "phase": "running", "message": "ready", "url": "http://127.0.0.1:1/"})
    c.handle_event({"event": "phase", "phase": "deploying", "message": "applying x"})
    assert c.state is ServingState.running and c.changing
    c.handle_event({"event": "applied", "id": "r1", "ok": False, "message": "no", "hint": "h"})
    c.handle_event({"event": "phase", "phase": "deploying", "message": "restoring x"})
    assert c.state is ServingState.running and c.changing
    c.handle_event({"event": "phase", "phase": "running", "message": "ready"})
    assert c.state is ServingState.running and not c.changing
    assert states == ["starting", "running"], states
    assert changing == [True, False] and applied[0].id == "r1"


def test_attached_app_deploying_after_running_is_a_change(qtbot):
    # Followed through the files a supervisor writes (its record and its status), as a real one is; the
    # "supervisor" is a sleeping child, ended at the end so that the follower stops polling.
    import subprocess

    supervisor = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        record = {"pid": supervisor.pid, "pgid": None, "url": "http://127.0.0.1:1/", "config": _config()}
        paths.write_json_atomic(paths.supervisor_record(), record)
        paths.write_json_atomic(paths.status_record(), {"phase": "deploying", "url": record["url"], "deployments": []})
        c = AttachedSupervisor(SupervisorRecord.model_validate(record))
        c.poll_ms = 50
        assert c.state is ServingState.running and c.running_config == LaunchConfig.from_dict(_config())
        changed = []
        c.running_config_changed.connect(lambda before, after: changed.append((before, after)))
        c.start_following()
        qtbot.waitUntil(lambda: c.changing, timeout=5_000)
        assert c.state is ServingState.running and c.changing
        # The record's config is what it serves after `gradio-serve apply`: followed.
        newer = {**record, "config": _config(**{"models.0.model": "other"})}
        paths.write_json_atomic(paths.supervisor_record(), newer)
        paths.write_json_atomic(paths.status_record(), {"phase": "running", "url": record["url"], "deployments": []})
        qtbot.waitUntil(lambda: not c.changing and bool(changed), timeout=5_000)
        assert c.state is ServingState.running and not c.changing
        newer_config = LaunchConfig.from_dict(newer["config"])
        assert changed == [(LaunchConfig.from_dict(_config()), newer_config)] and c.running_config == newer_config
    finally:
        supervisor.kill()
        supervisor.wait()
    qtbot.waitUntil(lambda: c.state is ServingState.stopped, timeout=5_000)  # gone: it follows no more


# ---- the window with a fake supervisor ---------------------------------------------------


@pytest.fixture
def window(qtbot, monkeypatch, tmp_path):
    monkeypatch.setattr(machine, "cpu_count", lambda: 4)
    monkeypatch.setattr(machine, "probe", lambda: machine.MachineInfo(4, 16 << 30, 8 << 30, ()))
    monkeypatch.setattr("launcher.model_catalog.load_choices", lambda: list(CHOICES))
    monkeypatch.setattr("launcher.model_catalog.resolve", lambda ref, mode, field: CHOICES[1])
    monkeypatch.setenv("FAKE_APPLY_S", "1.0")
    from launcher.window import MainWindow

    w = MainWindow(Settings(), open_browser=False)
    w.session.controller_factory = lambda parent: SupervisorProcess(
        parent, command=[sys.executable, fake_path("serving_apply")]
    )
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.form.catalog_loaded and w.form.machine_probed, timeout=5_000)
    w.form.rows[0].model.setEditText("t5-tiny")
    w.form.rows[0].cpus.setValue(1)
    yield w
    if w.controller is not None:
        w.controller.shutdown_now(wait_s=3)  # never leave a fake supervisor behind


def _start(window, qtbot, port: int) -> SupervisorProcess:
    window.form.port.setValue(port)
    window.start_serving(interactive=False)
    qtbot.waitUntil(lambda: window.state_text().startswith("Running"), timeout=15_000)
    return window.controller


def test_apply_button_follows_the_difference_from_the_running_config(window, qtbot):
    assert not window.apply_button.isVisible(), "nothing runs: nothing to apply to"
    port = free_port()
    _start(window, qtbot, port)
    row = window.form.rows[0]
    assert window.apply_button.isVisible() and not window.apply_button.isEnabled()
    assert not window.pending_label.isVisible()
    assert row.model.isEnabled() and row.replicas.isEnabled() and window.form.port.isEnabled(), "editable while running"
    assert not window.start_button.isEnabled()

    row.replicas.setValue(2)
    assert window.apply_button.isEnabled() and window.apply_button.text() == "Apply changes"
    assert window.pending_label.isVisible() and "Changes not applied yet" in window.pending_label.text()
    row.replicas.setValue(1)
    assert not window.apply_button.isEnabled() and not window.pending_label.isVisible()

    window.form.port.setValue(port + 1)
    assert window.apply_button.isEnabled() and window.apply_button.text().startswith("Restart")
    assert "needs a restart" in window.pending_label.text() and "port" in window.pending_label.text()
    window.form.port.setValue(port)
    assert not window.apply_button.isEnabled()

    # Precision is changed in place too (Serve reloads the weights in the same replica).
    row.precision.setCurrentText("bfloat16")
    assert window.apply_button.isEnabled() and window.apply_button.text() == "Apply changes"
    assert "Changes not applied yet" in window.pending_label.text()
    row.precision.setCurrentText("Auto")
    assert not window.apply_button.isEnabled()

    row.model.setEditText("smollm2-135m-instruct")
    row.precision.setCurrentText("float32")
    assert window.apply_button.isEnabled()
    window.revert_changes()
    assert window.form.rows[0].dtype() == "auto"
    assert window.form.rows[0].model_ref() == "t5-tiny" and not window.apply_button.isEnabled()


def test_apply_in_place_success_failure_refusal_and_restart(window, qtbot, monkeypatch):
    port = free_port()
    controller = _start(window, qtbot, port)
    opened = []
    monkeypatch.setattr(window.browser, "open_when_ready", lambda url: opened.append(url))
    stalls = StallProbe()

    # Success: Stop and Open stay usable while it changes; the baseline becomes the new config.
    window.form.rows[0].model.setEditText("smollm2-135m-instruct")
    window.apply_button.click()
    assert window.state_text().startswith("Running") and "applying changes" in window.state_text()
    assert not window.apply_button.isEnabled() and not window.form.rows[0].model.isEnabled()
    qtbot.waitUntil(lambda: controller.changing, timeout=5_000)
    assert window.stop_button.isEnabled() and window.open_button.isEnabled()
    assert window.tray.state == "running" and "applying changes" in window.tray.tooltip
    qtbot.waitUntil(lambda: window.session.state is not SessionState.applying, timeout=10_000)
    assert "Applied in" in window.statusBar().currentMessage(), window.statusBar().currentMessage()
    assert "Applied in" in window.log_view.plain_text()
    assert controller.running_config.models[0].model == "smollm2-135m-instruct"
    assert window.status_table.rows()[0][0] == "smollm2-135m-instruct"
    assert not window.apply_button.isEnabled() and not window.pending_label.isVisible()
    assert window.form.rows[0].model.isEnabled() and "applying" not in window.state_text()
    assert f"127.0.0.1:{port}/" in window.state_label.text()
    assert errors.last_dialog is None and opened == [], "no error, and the browser is not opened again"

    # A Hub model not here: its download's progress shows while the app goes on, then it is applied.
    said = []
    window.statusBar().messageChanged.connect(said.append)
    window.form.rows[0].model.setEditText("download-me")
    window.apply_changes()
    qtbot.waitUntil(lambda: window.session.state is not SessionState.applying, timeout=10_000)
    downloads = [m for m in said if m.startswith("Applying changes: Downloading download-me: ")]
    assert len(downloads) >= 2 and "75%" in downloads[-1], said
    assert controller.running_config.models[0].model == "download-me"
    window.form.rows[0].model.setEditText("smollm2-135m-instruct")
    window.apply_changes()
    qtbot.waitUntil(lambda: window.session.state is not SessionState.applying, timeout=10_000)

    # A failed deploy: the message and hint reach the user, the old config stays the baseline.
    window.form.rows[0].model.setEditText("broken")
    window.apply_changes()
    qtbot.waitUntil(lambda: window.session.state is not SessionState.applying, timeout=10_000)
    assert errors.last_dialog is not None and "failed to deploy: broken" in errors.last_dialog.text()
    assert "restored" in errors.last_dialog.informativeText()
    qtbot.waitUntil(lambda: not controller.changing, timeout=5_000)
    assert controller.running_config.models[0].model == "smollm2-135m-instruct"
    assert window.controller.state is ServingState.running and window.apply_button.isEnabled(), "still differs"

    # A refusal comes back at once.
    errors.last_dialog = None
    window.form.rows[0].model.setEditText("refused")
    window.apply_changes()
    qtbot.waitUntil(lambda: window.session.state is not SessionState.applying, timeout=5_000)
    assert "still starting" in errors.last_dialog.text()

    # An invalid form is refused before anything is sent.
    errors.last_dialog = None
    window.form.rows[0].model.setEditText("")
    window.apply_changes()
    assert window.session.state is not SessionState.applying and "cannot be applied" in errors.last_dialog.text()

    # A port change restarts (Stop, then Start with the form's settings) once confirmed.
    window.form.rows[0].model.setEditText("smollm2-135m-instruct")
    new_port = free_port()
    window.form.port.setValue(new_port)
    window.apply_changes()
    box = question(window)
    assert box is not None and "needs a restart" in box.text()
    button(box, "Restart").click()
    qtbot.waitUntil(lambda: window.state_text().startswith("Running") and f":{new_port}/" in window.state_label.text(),
                    timeout=20_000)
    assert window.controller.running_config.http.port == new_port
    assert not window.apply_button.isEnabled()
    assert stalls.stop() < 500, "the GUI thread stalled"


def test_apply_reaches_an_app_found_running_and_follows_changes_made_elsewhere(window, qtbot, tmp_path):
    """A supervisor this window did not start ("Quit, keep serving", or a terminal) is asked the same way;
    a change made with `gradio-serve apply` shows up in an unedited form."""
    import json
    import subprocess
    from pathlib import Path

    from launcher.attached import find_running
    from serving.core import apply_request

    port = free_port()
    config = LaunchConfig.from_dict({"models": [{"model": "t5-tiny", "num_cpus": 1}], "http": {"port": port}})
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config.model_dump(mode="json")))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent), "FAKE_APPLY_S": "0.3"}
    proc = subprocess.Popen([sys.executable, fake_path("serving_apply"), "up", "--events", "--config", str(config_file)],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env)
    try:
        qtbot.waitUntil(lambda: find_running() is not None, timeout=10_000)
        window.attach(find_running())
        controller = window.controller
        assert isinstance(controller, AttachedSupervisor) and not window.apply_button.isEnabled()

        window.form.rows[0].replicas.setValue(2)
        window.apply_changes()
        qtbot.waitUntil(lambda: window.session.state is not SessionState.applying, timeout=10_000)
        assert "Applied in" in window.statusBar().currentMessage(), errors.last_dialog and errors.last_dialog.text()
        assert controller.running_config.models[0].replicas == 2 and not window.apply_button.isEnabled()

        running = controller.running_config.model_dump(mode="json")
        elsewhere = {**running, "models": [{**running["models"][0], "model": "smollm2-135m-instruct"}]}
        apply_request.send(proc.pid, elsewhere)
        qtbot.waitUntil(lambda: window.form.rows[0].model_ref() == "smollm2-135m-instruct", timeout=10_000)
        assert not window.apply_button.isEnabled() and errors.last_dialog is None

        window.stop_serving()
        qtbot.waitUntil(lambda: window.state_text() == "Stopped", timeout=10_000)
        proc.wait(timeout=5)  # ended by the window's Stop (SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class StallProbe:
    """The longest gap between ticks of a 10 ms timer on the GUI thread (as benchmarks/gui.py)."""

    def __init__(self):
        from PySide6.QtCore import QElapsedTimer, QTimer

        self.max_gap_ms = 0.0
        self._clock = QElapsedTimer()
        self._clock.start()
        self._last = 0
        self._timer = QTimer(interval=10)
        self._timer.timeout.connect(self._tick)
        self._timer.start()

    def _tick(self) -> None:
        now = self._clock.elapsed()
        self.max_gap_ms = max(self.max_gap_ms, now - self._last)
        self._last = now

    def stop(self) -> float:
        self._timer.stop()
        return self.max_gap_ms


# ---- the real supervisor ---------------------------------------------------------------


@pytest.mark.slow
def test_apply_swaps_the_model_of_the_real_app_from_the_window(qtbot, tiny_models):
    from gradio_client import Client
    from test_launcher_cycle import START_TIMEOUT_MS, alive, descendants, group_members, kill_all, tiny_model_window

    from serving.cluster.reaper import group_alive

    window, _ = tiny_model_window(qtbot, tiny_models["seq2seq"])

    window.start_serving(interactive=False)
    qtbot.waitUntil(lambda: isinstance(window.controller, SupervisorProcess) and bool(window.controller.pid),
                    timeout=60_000)
    controller = window.controller
    tree: list[psutil.Process] = []
    try:
        qtbot.waitUntil(lambda: window.state_text().startswith(("Running", "Failed")), timeout=START_TIMEOUT_MS)
        assert window.state_text().startswith("Running"), window.log_view.plain_text()[-3000:]
        tree = [psutil.Process(controller.pid)] + descendants(controller.pid)
        pgid = controller.pgid

        window.form.rows[0].model.setEditText(tiny_models["instruct"])
        assert window.apply_button.isEnabled() and window.apply_button.text() == "Apply changes"
        stalls = StallProbe()
        started = time.monotonic()
        window.apply_button.click()
        assert "applying changes" in window.state_text()
        qtbot.waitUntil(lambda: window.session.state is not SessionState.applying, timeout=300_000)
        took = time.monotonic() - started
        max_stall = stalls.stop()
        message = window.statusBar().currentMessage()
        assert "Applied in" in message, (message, errors.last_dialog and errors.last_dialog.text(),
                                         window.log_view.plain_text()[-3000:])
        print(f"applied from the window in {took:.1f} s ({message}); longest GUI stall {max_stall:.0f} ms")
        assert controller.running_config.models[0].model == tiny_models["instruct"]
        assert window.state_text().startswith("Running") and window.stop_button.isEnabled()
        assert not window.apply_button.isEnabled() and not window.pending_label.isVisible()
        qtbot.waitUntil(
            lambda: any(tiny_models["instruct"] in r[0] and r[1] in ("HEALTHY", "RUNNING")
                        for r in window.status_table.rows()),
            timeout=30_000,
        )
        assert not any(tiny_models["seq2seq"] in r[0] for r in window.status_table.rows())

        # The new model answers; asked from a thread so the GUI keeps turning meanwhile.
        answer: dict = {}

        def ask():
            try:
                answer["text"] = Client(controller.url, verbose=False).predict(
                    "The Eiffel Tower is a wrought-iron lattice tower in Paris.", api_name="/summarize")
            except Exception as exc:  # noqa: BLE001 - reported by the assert below
                answer["error"] = repr(exc)

        asker = threading.Thread(target=ask, daemon=True)
        asker.start()
        qtbot.waitUntil(lambda: not asker.is_alive(), timeout=120_000)
        assert isinstance(answer.get("text"), str) and answer["text"].strip(), answer
        assert max_stall < 500, f"the GUI thread stalled {max_stall:.0f} ms during the apply"
        assert errors.last_dialog is None, errors.last_dialog and errors.last_dialog.text()

        window.stop_serving()
        qtbot.waitUntil(lambda: window.state_text() == "Stopped", timeout=120_000)
        try:
            qtbot.waitUntil(lambda: not group_members(pgid) and not alive(tree), timeout=30_000)
        except qtbot.TimeoutError:
            pytest.fail(f"left behind: group {group_members(pgid)}, tree {alive(tree)}")
        assert not group_alive(pgid)
        assert paths.read_json(paths.supervisor_record()) is None
    finally:
        if controller.running():
            controller.kill_now(wait_s=10)
        kill_all(tree, controller.pgid)
