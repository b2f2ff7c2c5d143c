"""The launcher window: widgets, bounds, validation, warnings, tray/close behaviour, flags.

Offscreen Qt (no tray there). The supervisor is not started here except through
a fake command in one test; the real one runs in test_launcher_cycle.py.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from fakes import path as fake_path
from fakes.controller import recording_factory
from questions import question
from supervisor_run import free_port

from launcher import app as app_mod
from launcher import errors, machine
from launcher.model_catalog import ModelChoice
from launcher.serving_controller import ServingState
from launcher.settings import Settings
from launcher.slot_row import PRECISION_HELP
from launcher.supervisor_process import SupervisorProcess
from launcher.window import TITLE, MainWindow
from launcher.worker import pending_count
from serving.core.config import MAX_MODEL_SLOTS, LaunchConfig, Mode

ROOT = Path(__file__).resolve().parent.parent

CHOICES = [
    ModelChoice(name="smollm2-135m-instruct", kind="instruct", params_m=135, memory_mb=900),
    ModelChoice(name="t5-tiny", kind="seq2seq", params_m=1, memory_mb=400, source="cache"),
    ModelChoice(name="gpt-tiny", kind="causal", tasks=("fanout",), params_m=1, memory_mb=400, source="cache"),
    ModelChoice(
        name="big-download",
        kind="causal",
        tasks=("fanout",),
        params_m=7000,
        memory_mb=30000,
        available_offline=False,
        source="hub",
    ),
]

pytestmark = pytest.mark.usefixtures("launcher_env")  # see conftest.py


@pytest.fixture
def window(qtbot, monkeypatch):
    """A window on a known 4-CPU, 8 GB, no-GPU machine with a known catalog."""
    monkeypatch.setattr(machine, "cpu_count", lambda: 4)
    monkeypatch.setattr(machine, "probe", lambda: machine.MachineInfo(4, 16 << 30, 8 << 30, ()))
    monkeypatch.setattr("launcher.model_catalog.load_choices", lambda: list(CHOICES))
    w = MainWindow(Settings(), open_browser=False)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.form.catalog_loaded and w.form.machine_probed, timeout=5_000)
    return w


def test_a_machine_that_leaves_is_said_in_the_tray(window, monkeypatch):
    from serving.core.protocol import Machine, StatusEvent

    said = []
    monkeypatch.setattr(window.tray, "message", lambda title, text: said.append((title, text)) or True)
    head, other = Machine(address="10.77.1.1", head=True), Machine(address="10.77.1.2")
    window.session.status_changed.emit(StatusEvent(app_status="RUNNING", machines=[head, other]))
    window.session.status_changed.emit(StatusEvent(app_status="RUNNING", machines=[head]))
    assert said == [("A machine left", "10.77.1.2 left or died: its replicas start again where there is room.")]


def dialog_text() -> str:
    box = errors.last_dialog
    assert box is not None, "expected an error dialog"
    return f"{box.text()}\n{box.informativeText()}"


def test_window_title_and_opens_fast(qtbot):
    started = time.perf_counter()
    w = MainWindow(Settings(), open_browser=False)
    qtbot.addWidget(w)
    w.show()
    assert time.perf_counter() - started < 0.5, "the window must not wait for the catalog or the machine probe"
    assert w.windowTitle() == TITLE
    assert w.state_text() == "Stopped"
    assert not w.stop_button.isEnabled() and not w.open_button.isEnabled() and w.start_button.isEnabled()
    qtbot.waitUntil(lambda: pending_count() == 0, timeout=10_000)


def test_mode_switch_adds_and_removes_slots(window):
    w = window
    assert w.form.mode() is Mode.summarize and len(w.form.rows) == 1
    assert not w.form.add_button.isVisible()
    w.form.mode_fanout.setChecked(True)
    assert len(w.form.rows) == 2 and w.form.add_button.isVisible()
    # The new slot is an offline fan-out model not used yet.
    assert w.form.rows[1].model_ref() == "t5-tiny"
    assert w.form.rows[0].remove.isHidden(), "fan-out keeps at least two models"
    third = w.form.add_slot()
    assert third is not None and third.model_ref() == "gpt-tiny"
    assert not any(r.remove.isHidden() for r in w.form.rows)
    w.form.remove_slot(w.form.rows[0])
    assert [r.model_ref() for r in w.form.rows] == ["t5-tiny", "gpt-tiny"]
    while w.form.add_slot() is not None:
        pass
    assert len(w.form.rows) == MAX_MODEL_SLOTS and not w.form.add_button.isEnabled()
    # Back to one model, and the fan-out slots come back when switching again.
    w.form.mode_summarize.setChecked(True)
    assert len(w.form.rows) == 1 and w.form.current_config().mode is Mode.summarize
    w.form.mode_fanout.setChecked(True)
    assert len(w.form.rows) == MAX_MODEL_SLOTS


def test_picker_lists_catalog_entries_that_suit_the_mode(window):
    combo = window.form.rows[0].model
    names = [combo.itemText(i) for i in range(combo.count())]
    assert names == ["smollm2-135m-instruct", "t5-tiny"], "plain causal models cannot summarize"
    details = window.form.rows[0].details.text()
    assert "instruct" in details and "135M params" in details and "per replica" in details and "offline" in details
    window.form.mode_fanout.setChecked(True)
    names = [combo.itemText(i) for i in range(combo.count())]
    assert "gpt-tiny" in names and "big-download" in names
    window.form.rows[1].model.setEditText("big-download")
    assert "needs a download" in window.form.rows[1].details.text()
    window.form.rows[1].model.setEditText("someone/some-model")
    assert "checked when you press Start" in window.form.rows[1].details.text()


def test_numbers_are_bounded_by_the_machine(window):
    row = window.form.rows[0]
    assert row.cpus.maximum() == 4
    assert not row.gpus.isEnabled() and row.gpus.maximum() == 0, "no GPU found"
    row.cpus.setValue(1)
    assert row.replicas.maximum() == 4
    row.cpus.setValue(2)
    assert row.replicas.maximum() == 2
    row.cpus.setValue(99)
    assert row.cpus.value() == 4


def test_gpu_bounds_follow_detected_gpus(qtbot, monkeypatch):
    monkeypatch.setattr(machine, "probe", lambda: machine.MachineInfo(8, 16 << 30, 8 << 30, ("NVIDIA H100",)))
    w = MainWindow(Settings(), open_browser=False)
    qtbot.addWidget(w)
    qtbot.waitUntil(lambda: w.form.machine_probed, timeout=5_000)
    assert w.form.rows[0].gpus.isEnabled() and w.form.rows[0].gpus.maximum() == 1
    w.form.rows[0].gpus.setValue(0.5)
    assert w.form.current_config().models[0].num_gpus == 0.5


def test_config_round_trip_keeps_fields_the_window_does_not_show(window):
    config = LaunchConfig.from_dict(
        {
            "mode": "fanout",
            "models": [
                {"model": "t5-tiny", "label": "T5", "num_cpus": 0.5, "generation": {"num_beams": 4}},
                {"model": "gpt-tiny", "autoscaling": {"min_replicas": 1, "max_replicas": 3}},
            ],
            "ingress_cpus": 0.5,
            "http": {"port": 8123},
        }
    )
    window.form.apply_config(config)
    assert window.form.mode() is Mode.fanout and window.form.port.value() == 8123
    assert not window.form.rows[1].replicas.isEnabled(), "autoscaling comes from the file"
    assert window.form.current_config() == config
    window.form.rows[0].cpus.setValue(1.5)
    window.form.port.setValue(8124)
    got = window.form.current_config()
    assert got.models[0].num_cpus == 1.5 and got.models[0].generation.num_beams == 4
    assert got.models[0].label == "T5" and got.http.port == 8124 and got.ingress_cpus == 0.5


def test_empty_model_is_refused_with_a_message(window, qtbot):
    window.form.rows[0].model.setEditText("")
    window.start_serving()
    assert "Model 1 is empty" in dialog_text()
    assert window.controller is None


def test_unknown_model_is_refused_before_any_process(window, qtbot, monkeypatch):
    from serving.core.config import ConfigError

    def resolve(ref, mode, field):
        raise ConfigError(f"{field}: unknown model {ref!r}: run `gradio-serve models`")

    monkeypatch.setattr("launcher.model_catalog.resolve", resolve)
    window.form.rows[0].model.setEditText("nobody/nothing")
    window.start_serving()
    qtbot.waitUntil(lambda: errors.last_dialog is not None, timeout=5_000)
    assert "unknown model 'nobody/nothing'" in dialog_text()
    assert window.controller is None and window.start_button.isEnabled()


def test_port_in_use_is_refused_with_a_suggestion(window, qtbot, monkeypatch):
    monkeypatch.setattr("launcher.model_catalog.resolve", lambda ref, mode, field: CHOICES[0])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        window.form.port.setValue(port)
        window.start_serving()
        qtbot.waitUntil(lambda: errors.last_dialog is not None, timeout=5_000)
    text = dialog_text()
    assert f"Port {port} is already in use" in text and "Choose another port" in text
    assert window.controller is None


def test_warnings_before_start_when_cpus_or_memory_exceed_the_machine(window, qtbot, monkeypatch):
    monkeypatch.setattr("launcher.model_catalog.resolve", lambda ref, mode, field: CHOICES[0])
    started = []
    window.session.controller_factory = recording_factory(started)
    window.form.apply_config(LaunchConfig.from_dict({"ingress_cpus": 0.5}))
    window.form.rows[0].cpus.setValue(4)
    config = window.form.current_config()
    warnings = window.form.resource_warnings(config, memory_available=100 << 20)
    assert len(warnings) == 2
    assert "4.5 CPUs" in warnings[0] and "has 4" in warnings[0]
    assert "memory" in warnings[1] and "free" in warnings[1]
    assert "Needs 4.5 of 4 CPUs" in window.form.resources_label.text()

    window.form.port.setValue(free_port())
    window.start_serving()
    qtbot.waitUntil(lambda: question(window) is not None, timeout=5_000)
    box = question(window)
    assert "CPUs" in box.informativeText()
    box.reject()  # Cancel
    qtbot.waitUntil(lambda: question(window) is None, timeout=2_000)
    assert started == [] and window.start_button.isEnabled()

    window.start_serving()
    qtbot.waitUntil(lambda: question(window) is not None, timeout=5_000)
    box = question(window)
    start = next(b for b in box.buttons() if b.text() == "Start anyway")
    start.click()
    qtbot.waitUntil(lambda: len(started) == 1, timeout=2_000)
    assert started[0].models[0].num_cpus == 4


def test_fitting_config_has_no_warnings(window):
    assert window.form.resource_warnings(window.form.current_config(), memory_available=8 << 30) == []
    remote = LaunchConfig.from_dict({"models": [{"num_cpus": 64}], "cluster": {"address": "auto"}})
    assert window.form.resource_warnings(remote, memory_available=1) == [], "a remote cluster is checked there"


def _reopen(qtbot) -> MainWindow:
    """A second window on the settings the first one saved (as the next launch)."""
    from launcher import settings as settings_mod

    loaded, message = settings_mod.load()
    assert message is None
    w = MainWindow(loaded, open_browser=False)
    qtbot.addWidget(w)
    qtbot.waitUntil(lambda: w.form.catalog_loaded and w.form.machine_probed, timeout=5_000)
    return w


def test_existing_cluster_address_reaches_the_config_and_round_trips(window, qtbot, tmp_path, monkeypatch):
    w = window
    assert not w.form.cluster_box.isChecked() and not w.form.cluster_address.isEnabled()
    assert w.form.current_config().cluster.address is None
    w.form.cluster_box.setChecked(True)
    assert w.form.cluster_address.isEnabled()
    w.form.cluster_address.setText("ray://head.example:10001")
    w.form.rows[0].cpus.setValue(16)  # more than this 4-CPU machine: the cluster's size is not known here
    config = w.form.current_config()
    assert config.cluster.address == "ray://head.example:10001" and config.models[0].num_cpus == 16
    assert w.form.resource_warnings(config, memory_available=1) == []
    assert "Cluster at ray://head.example:10001" in w.form.resources_label.text()
    for address in ("auto", "10.0.0.5:6379"):
        w.form.cluster_address.setText(address)
        assert w.form.current_config().cluster.address == address

    # Settings: saved and shown again by the next launch.
    w.save_settings()
    again = _reopen(qtbot)
    assert again.form.cluster_box.isChecked() and again.form.cluster_address.text() == "10.0.0.5:6379"
    assert again.form.current_config() == w.form.current_config()

    # A configuration file: saved and loaded back.
    path = tmp_path / "cluster.json"
    monkeypatch.setattr("launcher.dialogs.QFileDialog.getSaveFileName", lambda *a, **k: (str(path), ""))
    monkeypatch.setattr("launcher.dialogs.QFileDialog.getOpenFileName", lambda *a, **k: (str(path), ""))
    w.save_config_action.trigger()
    assert LaunchConfig.load(path).cluster.address == "10.0.0.5:6379"
    w.form.cluster_box.setChecked(False)
    assert w.form.current_config().cluster.address is None and not w.form.cluster_address.isEnabled()
    assert w.form.rows[0].cpus.maximum() == 4, "this machine's bounds are back"
    w.load_config_action.trigger()
    assert w.form.cluster_box.isChecked() and w.form.current_config().cluster.address == "10.0.0.5:6379"


def test_bad_cluster_address_is_refused_with_a_message(window):
    window.form.cluster_box.setChecked(True)
    for address in ("", "head.example", "http://head:8265"):
        errors.last_dialog = None
        window.form.cluster_address.setText(address)
        window.start_serving()
        assert "auto, host:port or ray://host:port" in dialog_text()
        assert window.controller is None


def test_autoscaling_in_advanced_reaches_the_config_and_round_trips(window, qtbot):
    w = window
    row = w.form.rows[0]
    assert row.advanced.isHidden() and not w.form.advanced_button.isChecked()
    w.form.advanced_button.click()
    assert row.advanced.isVisible()
    assert not row.scale_min.isEnabled(), "the scaling numbers matter only while autoscaling"
    row.replicas.setValue(2)
    row.autoscale.setChecked(True)
    assert not row.replicas.isEnabled() and row.scale_max.isEnabled()
    row.scale_min.setValue(1)
    row.scale_max.setValue(3)
    row.scale_target.setValue(4.5)
    slot = w.form.current_config().models[0]
    assert slot.autoscaling is not None
    assert (slot.autoscaling.min_replicas, slot.autoscaling.max_replicas) == (1, 3)
    assert slot.autoscaling.target_ongoing_requests == 4.5
    assert "Needs 3 of 4 CPUs" in w.form.resources_label.text(), "what must fit is the most replicas"
    row.set_editable(False)  # while serving
    assert not row.autoscale.isEnabled() and not row.scale_max.isEnabled() and not row.replicas.isEnabled()
    row.set_editable(True)
    assert row.scale_max.isEnabled() and not row.replicas.isEnabled()

    w.save_settings()
    again = _reopen(qtbot)
    assert again.form.advanced_button.isChecked(), "autoscaling in the settings opens Advanced"
    other = again.form.rows[0]
    assert other.autoscale.isChecked() and not other.replicas.isEnabled()
    assert again.form.current_config() == w.form.current_config()

    row.autoscale.setChecked(False)
    slot = w.form.current_config().models[0]
    assert slot.autoscaling is None and slot.replicas == 2 and row.replicas.isEnabled()
    w.form.mode_fanout.setChecked(True)
    assert not w.form.rows[1].advanced.isHidden(), "new slots follow Advanced"


def test_autoscaling_min_above_max_is_refused_with_a_message(window):
    row = window.form.rows[0]
    row.autoscale.setChecked(True)
    row.scale_max.setValue(2)
    row.scale_min.setValue(3)
    window.start_serving()
    assert "min_replicas must not exceed max_replicas" in dialog_text()
    assert window.controller is None and window.start_button.isEnabled()


def test_precision_in_advanced_reaches_the_config_and_round_trips(window, qtbot):
    w = window
    row = w.form.rows[0]
    assert row.dtype() == "auto" and row.precision.currentText() == "Auto"
    assert [row.precision.itemText(i) for i in range(row.precision.count())] == [
        "Auto", "float32", "bfloat16", "float16"
    ]
    assert not row.precision.isVisible(), "an advanced option: the row stays uncluttered"
    tip = row.precision.toolTip()
    assert "Auto: bfloat16 on CPUs with native bfloat16" in tip and "float32 on other CPUs" in tip
    assert "1.5x" in tip and "float16 is for GPUs" in tip
    w.form.advanced_button.click()
    assert row.precision.isVisible()
    row.precision.setCurrentText("bfloat16")
    assert w.form.current_config().models[0].dtype == "bfloat16"
    row.set_editable(False)  # while a change is on its way
    assert not row.precision.isEnabled()
    row.set_editable(True)

    # Settings store it (it differs from the default) and the next launch shows it, with Advanced open.
    w.save_settings()
    from launcher import settings as settings_mod

    stored = json.loads(settings_mod.settings_path().read_text())
    assert stored["config"]["models"][0]["dtype"] == "bfloat16"
    w.form.advanced_button.click()  # closed again: the next window opens it because of the dtype
    w.save_settings()
    again = _reopen(qtbot)
    assert again.form.advanced_button.isChecked() and again.form.rows[0].precision.currentText() == "bfloat16"
    assert again.form.current_config() == w.form.current_config()

    # Kept through a summarizer/fan-out switch, and Auto is stored as nothing.
    w.form.mode_fanout.setChecked(True)
    w.form.rows[1].precision.setCurrentText("float16")
    w.form.mode_summarize.setChecked(True)
    w.form.mode_fanout.setChecked(True)
    assert [slot.dtype for slot in w.form.current_config().models] == ["bfloat16", "float16"]
    w.form.mode_summarize.setChecked(True)
    row.precision.setCurrentText("Auto")
    w.save_settings()
    assert "dtype" not in json.dumps(json.loads(settings_mod.settings_path().read_text()).get("config", {}))


def _window_on(qtbot, monkeypatch, native_bf16: bool | None) -> MainWindow:
    """A 4-CPU, no-GPU window whose machine probe reports `native_bf16`."""
    monkeypatch.setattr(
        machine, "probe", lambda: machine.MachineInfo(4, 16 << 30, 8 << 30, (), native_bf16=native_bf16)
    )
    monkeypatch.setattr("launcher.model_catalog.load_choices", lambda: list(CHOICES))
    monkeypatch.setattr("launcher.model_catalog.resolve", lambda ref, mode, field: CHOICES[0])
    w = MainWindow(Settings(), open_browser=False)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.form.catalog_loaded and w.form.machine_probed, timeout=5_000)
    w.form.port.setValue(free_port())
    return w


def test_bfloat16_on_a_cpu_without_native_support_is_warned_before_start(qtbot, monkeypatch):
    w = _window_on(qtbot, monkeypatch, native_bf16=False)
    started = []
    w.session.controller_factory = recording_factory(started)
    row = w.form.rows[0]
    assert row.precision.toolTip() == PRECISION_HELP, "Auto on a CPU without bf16: nothing more to say"
    row.precision.setCurrentText("bfloat16")
    assert "no native bfloat16" in row.precision.toolTip()
    assert w.form.resource_warnings(w.form.current_config(), memory_available=8 << 30) == [], "it fits; it is only slower"
    assert "no native bfloat16" not in w.form.resources_label.toolTip()

    w.start_serving()
    qtbot.waitUntil(lambda: question(w) is not None, timeout=5_000)
    box = question(w)
    assert box.text() == "This may be slow on this machine."
    assert "Model 1 (smollm2-135m-instruct) uses bfloat16" in box.informativeText()
    assert "no native bfloat16" in box.informativeText() and "float32" in box.informativeText()
    next(b for b in box.buttons() if b.text() == "Start anyway").click()
    qtbot.waitUntil(lambda: len(started) == 1, timeout=2_000)
    assert started[0].models[0].dtype == "bfloat16", "the warning does not change the choice"

    # Not on a GPU slot, nor on someone else's cluster (its CPUs are not this one).
    gpu = w.form.current_config().model_copy(deep=True)
    gpu.models[0].num_gpus = 1
    assert w.form.precision_warnings(gpu) == []
    remote = LaunchConfig.from_dict({"models": [{"dtype": "bfloat16"}], "cluster": {"address": "auto"}})
    assert w.form.precision_warnings(remote) == []


@pytest.mark.parametrize("native_bf16", [True, None])
def test_bfloat16_is_not_warned_on_a_cpu_with_native_support_or_when_unknown(qtbot, monkeypatch, native_bf16):
    w = _window_on(qtbot, monkeypatch, native_bf16=native_bf16)
    started = []
    w.session.controller_factory = recording_factory(started)
    row = w.form.rows[0]
    hint = "bfloat16 would answer about 1.5x sooner here"
    # Native support: Auto on a CPU hints (in the tooltip only) that bfloat16 would be faster.
    assert (hint in row.precision.toolTip()) is (native_bf16 is True)
    row.precision.setCurrentText("bfloat16")
    assert hint not in row.precision.toolTip() and "no native bfloat16" not in row.precision.toolTip()
    assert w.form.precision_warnings(w.form.current_config()) == []
    w.start_serving()
    qtbot.waitUntil(lambda: len(started) == 1, timeout=5_000)
    assert question(w) is None and started[0].models[0].dtype == "bfloat16"


def use_fake_supervisor(window, tmp_path, monkeypatch, mode: str) -> None:
    """The window starts the fake supervisor tests/fakes/serving_up.py instead of the real one."""
    monkeypatch.setenv("FAKE_MODE", mode)
    monkeypatch.setattr("launcher.model_catalog.resolve", lambda ref, mode, field: CHOICES[0])
    window.session.controller_factory = lambda parent: SupervisorProcess(
        parent, command=[sys.executable, fake_path("serving_up")]
    )


def test_status_table_and_buttons_follow_the_supervisor(window, qtbot, tmp_path, monkeypatch):
    use_fake_supervisor(window, tmp_path, monkeypatch, "ok")
    opened = []
    window.browser.opener = lambda url: opened.append(url) or True
    window.options.open_browser_box.setChecked(True)
    port = free_port()
    window.form.port.setValue(port)
    window.start_serving()
    qtbot.waitUntil(lambda: window.state_text().startswith("Running"), timeout=10_000)
    try:
        assert f"http://127.0.0.1:{port}/" in window.state_label.text()
        assert window.status_table.rows() == [("m0 (smollm2-135m-instruct)", "RUNNING", "1/1", "")]
        assert window.stop_button.isEnabled() and window.open_button.isEnabled()
        assert not window.start_button.isEnabled()
        # Settings stay editable while running (Apply changes carries them over; nothing differs yet).
        assert window.form.rows[0].cpus.isEnabled() and not window.apply_button.isEnabled()
        assert window.tray.state == "running" and str(port) in window.tray.tooltip
        # Nothing answers on the fake's URL, so no browser yet: it opens once the page answers.
        qtbot.wait(1500)
        assert opened == []
        window.open_in_browser()
        assert opened == [f"http://127.0.0.1:{port}/"]
    finally:
        window.stop_serving()
        qtbot.waitUntil(lambda: window.state_text() == "Stopped", timeout=10_000)
    assert window.status_table.rows() == [] and window.start_button.isEnabled()
    assert window.tray.state == "stopped"


def test_supervisor_error_reaches_a_dialog(window, qtbot, tmp_path, monkeypatch):
    use_fake_supervisor(window, tmp_path, monkeypatch, "fail")
    window.form.port.setValue(free_port())
    window.start_serving()
    qtbot.waitUntil(lambda: window.controller is not None and window.controller.state is ServingState.error,
                    timeout=10_000)
    assert "port 8000 is in use" in dialog_text() and "pick another port" in dialog_text()
    assert window.tray.state == "error" and window.start_button.isEnabled()
    assert "port 8000 is in use" in window.log_view.plain_text()


def test_browser_opens_only_once_the_page_answers(qtbot):
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from launcher.browser import BrowserOpener

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    port = free_port()
    opened = []
    opener = BrowserOpener(opener=lambda url: opened.append(url) or True)
    opener.poll_ms = 100
    url = f"http://127.0.0.1:{port}/"
    opener.open_when_ready(url, timeout_s=20)
    qtbot.wait(500)
    assert opened == [] and opener.waiting()
    server = HTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        qtbot.waitUntil(lambda: opened == [url], timeout=10_000)
    finally:
        server.shutdown()
        server.server_close()
    assert not opener.waiting()


def test_tray_menu_offers_the_actions(window):
    texts = [a.text() for a in window.tray.menu.actions() if not a.isSeparator()]
    assert texts == [
        "Start",
        "Stop",
        "Open in browser",
        "Show window",
        "Open logs folder",
        "Quit, keep serving",
        "Quit",
    ]
    assert not window.tray.available(), "offscreen has no tray"


def test_close_without_tray_quits_when_idle(window, qtbot):
    with qtbot.waitSignal(window.quit_requested, timeout=2_000) as sig:
        window.close()
    assert sig.args == [False]


def test_close_without_tray_asks_while_serving(window, qtbot, monkeypatch):
    class Busy:
        state = ServingState.running
        url = "http://127.0.0.1:1/"

        def is_active(self):
            return True

    monkeypatch.setattr(window.session, "controller", Busy())
    quits = []
    window.quit_requested.connect(quits.append)
    window.close()
    assert window.isVisible(), "closing asks first"
    box = question(window)
    assert box is not None and "still serving" in box.text()
    names = [b.text() for b in box.buttons()]
    assert "Stop serving and quit" in names and "Quit, keep serving" in names
    box.reject()
    qtbot.waitUntil(lambda: question(window) is None, timeout=2_000)
    assert quits == [] and window.isVisible()
    monkeypatch.setattr(window.session, "controller", None)


def test_tray_close_hides_and_says_so_once(window, qtbot, monkeypatch):
    messages = []
    monkeypatch.setattr(window.tray, "available", lambda: True)
    monkeypatch.setattr(window.tray, "message", lambda title, text: messages.append(text) or True)
    window.close()
    assert not window.isVisible() and len(messages) == 1 and "tray" in messages[0]
    assert window.settings.tray_hint_shown
    window.bring_forward()
    window.close()
    assert len(messages) == 1, "said once"


def test_errors_go_through_one_function(window):
    errors.show_error("Something broke.", "Do this to fix it.", detail="Traceback (most recent call last): ...")
    assert dialog_text() == "Something broke.\nDo this to fix it."
    assert "Traceback" not in dialog_text()
    assert errors.last_dialog.detailedText().startswith("Traceback")
    assert "Something broke." in window.statusBar().currentMessage()
    assert "Traceback" in window.log_view.plain_text()


def test_flags_parse():
    args = app_mod.parse_args(["--start", "--no-browser", "--port", "8123", "--config", "x.json", "--minimized"])
    assert args.start and args.no_browser and args.port == 8123 and args.config == "x.json" and args.minimized
    with pytest.raises(SystemExit):
        app_mod.parse_args(["--port", "0"])


def test_startup_config_is_one_merge_of_config_and_port_over_the_saved_settings(tmp_path, monkeypatch):
    """--config and --port go over the saved settings as `gradio-serve up` takes them, without what only a
    terminal offers (Gradio's port variable, a password); a file that cannot be used is said."""
    monkeypatch.setenv("GRADIO_SERVER_PORT", "9999")
    monkeypatch.setenv("GRADIO_SERVE_PASSWORD", "not-for-the-window")
    saved = LaunchConfig.from_dict({"http": {"port": 8100}})
    config, problem = app_mod.startup_config(app_mod.parse_args(["--port", "8123"]), saved)
    assert problem is None and config.http.port == 8123 and config.http.password is None
    assert config.models == saved.models
    (tmp_path / "demo.py").write_text("")
    (tmp_path / "c.json").write_text('{"mode": "app", "app": {"target": "demo.py"}}')
    config, problem = app_mod.startup_config(app_mod.parse_args(["--config", str(tmp_path / "c.json")]), saved)
    assert problem is None and config.app.target == str(tmp_path / "demo.py") and config.http.port == 8000
    (tmp_path / "bad.json").write_text('{"models": []}')
    args = app_mod.parse_args(["--config", str(tmp_path / "bad.json"), "--port", "8124"])
    config, problem = app_mod.startup_config(args, saved)
    assert "bad.json cannot be used" in problem[0] and config.http.port == 8124 and config.models == saved.models


def test_desktop_flags_pass_through(monkeypatch, capsys):
    import types

    calls = []
    fake = types.SimpleNamespace(
        install_desktop_entry=lambda: calls.append("install") or [Path("/x/app.desktop")],
        uninstall_desktop_entry=lambda: calls.append("uninstall") or [],
        set_autostart=lambda enabled, start_serving=False: calls.append(("autostart", enabled, start_serving)),
        autostart_enabled=lambda: False,
    )
    monkeypatch.setitem(sys.modules, "launcher.desktop_entry", fake)
    import launcher

    monkeypatch.setattr(launcher, "desktop_entry", fake, raising=False)
    assert app_mod.main(["--install-desktop-entry"]) == 0
    assert app_mod.main(["--uninstall-desktop-entry"]) == 0
    assert app_mod.main(["--autostart", "on", "--start"]) == 0
    assert app_mod.main(["--autostart", "off"]) == 0
    assert calls == ["install", "uninstall", ("autostart", True, True), ("autostart", False, False)]
    assert "installed /x/app.desktop" in capsys.readouterr().out


def test_start_at_login_checkbox_calls_desktop_entry(qtbot, monkeypatch):
    import types

    import launcher

    calls = []
    fake = types.SimpleNamespace(
        autostart_enabled=lambda: False,
        autostart_starts_serving=lambda: False,
        set_autostart=lambda enabled, start_serving=False: calls.append((enabled, start_serving)),
    )
    monkeypatch.setitem(sys.modules, "launcher.desktop_entry", fake)
    monkeypatch.setattr(launcher, "desktop_entry", fake, raising=False)
    w = MainWindow(Settings(), open_browser=False)
    qtbot.addWidget(w)
    assert w.options.autostart_box.isEnabled() and not w.options.autostart_serve_box.isEnabled()
    w.options.autostart_box.setChecked(True)
    w.options.autostart_serve_box.setChecked(True)
    w.options.autostart_box.setChecked(False)
    assert calls == [(True, False), (True, True), (False, True)]


def test_single_instance_brings_the_first_window_forward(qtbot):
    from launcher.single_instance import SingleInstance, server_name

    first = SingleInstance()
    assert first.listen()
    second = None
    try:
        with qtbot.waitSignal(first.message_received, timeout=10_000) as got:
            # A second launch, as a real process: it must hand over and exit at once.
            second = subprocess.Popen(
                [sys.executable, "-m", "launcher.app", "--start"],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                stderr=subprocess.PIPE,
                text=True,
            )
        assert got.args == [["--start"]]
        _, err = second.communicate(timeout=20)
        assert second.returncode == 0 and "already running" in err
    finally:
        first.close()
        if second is not None and second.poll() is None:  # it did not hand over: never leave it running
            second.kill()
            second.wait()
    assert server_name().startswith("gradio-serve-launcher-")


def test_single_instance_takes_over_a_stale_socket(tmp_path):
    from PySide6.QtCore import QDir
    from PySide6.QtNetwork import QLocalServer

    from launcher.single_instance import SingleInstance

    name = f"gradio-serve-launcher-test-{os.getpid()}"
    path = os.path.join(QDir.tempPath(), name)
    # What a crashed launcher leaves: the socket file, with nobody listening.
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()
    assert os.path.exists(path)
    second = SingleInstance(name)
    try:
        assert second.listen()
    finally:
        second.close()
        QLocalServer.removeServer(name)


def _launcher_process(*flags: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "launcher.app", *flags],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for_log(text: str, timeout: float = 20.0) -> bool:
    from launcher.logs import log_file

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if text in log_file().read_text():
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def test_app_quits_on_quit_flag_and_on_sigterm():
    import signal

    first = _launcher_process("--no-browser")
    try:
        assert _wait_for_log(f"launcher started (pid {first.pid})")
        time.sleep(0.3)
        asked = subprocess.run(
            [sys.executable, "-m", "launcher.app", "--quit"],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        assert asked.returncode == 0
        assert first.wait(timeout=20) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    again = subprocess.run(
        [sys.executable, "-m", "launcher.app", "--quit"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert again.returncode == 0 and "not running" in again.stderr

    second = _launcher_process("--no-browser", "--minimized")
    try:
        assert _wait_for_log(f"launcher started (pid {second.pid})")
        time.sleep(0.3)
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=20) == 0
    finally:
        if second.poll() is None:
            second.kill()
            second.wait()


def test_a_bug_in_a_slot_reaches_the_user_as_a_message_not_a_traceback():
    code = (
        "import sys\n"
        "from PySide6.QtCore import QTimer\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication(sys.argv[:1])\n"
        "def boom():\n"
        "    raise RuntimeError('boom')\n"
        "def check():\n"
        "    from launcher import errors\n"
        "    box = errors.last_dialog\n"
        "    print('DIALOG:', box.text() if box else None, '|', box.detailedText()[:40] if box else '', flush=True)\n"
        "    app.quit()\n"
        "QTimer.singleShot(200, boom)\n"
        "QTimer.singleShot(500, check)\n"
        "from launcher.app import main\n"
        "sys.exit(main(['--no-browser']))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "DIALOG: Something went wrong inside the launcher: boom | Traceback" in out.stdout
    assert "Traceback" not in out.stderr
