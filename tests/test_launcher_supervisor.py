"""The supervisor QProcess wrapper and the detached-app follower, with a tiny fake supervisor.

A narrow unit: the fake (tests/fakes/serving_up.py) speaks serving/core/events.py's protocol (phase with pid/pgid,
status, error, stop/detach on stdin) so the wrapper's parsing, state changes,
grace-period kill of the process group and error reporting are checked in a
second each. The real supervisor is exercised in test_launcher_cycle.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import psutil
import pytest
from fakes import path as fake_path

from launcher.attached import AttachedSupervisor, find_running
from launcher.serving_controller import ServingState
from launcher.supervisor_process import SupervisorProcess, group_alive
from serving.core import paths
from serving.core.config import LaunchConfig

pytestmark = pytest.mark.usefixtures("launcher_env")  # see conftest.py


@pytest.fixture
def fake():
    return [sys.executable, fake_path("serving_up")]


@pytest.fixture
def controllers():
    made: list[SupervisorProcess] = []
    yield made
    for c in made:  # never leave a fake behind
        if c.running():
            c.kill_now(wait_s=2)


def _make(fake, controllers, qtbot, mode="ok", monkeypatch=None):
    monkeypatch.setenv("FAKE_MODE", mode)
    c = SupervisorProcess(command=fake)
    controllers.append(c)
    return c


def test_events_drive_the_state_and_stop_ends_the_group(fake, controllers, qtbot, monkeypatch):
    c = _make(fake, controllers, qtbot, monkeypatch=monkeypatch)
    states, statuses = [], []
    c.state_changed.connect(states.append)
    c.status_changed.connect(statuses.append)
    config = LaunchConfig.from_dict({"http": {"port": 8123}})
    assert c.start(config)
    assert not c.start(config), "start is idempotent while running"
    qtbot.waitUntil(lambda: c.state is ServingState.running, timeout=10_000)
    assert c.url == "http://127.0.0.1:8123/"
    assert c.pgid and c.pgid != os.getpgrp() and c.pid == c.pgid
    assert statuses and statuses[-1].deployments[0].status == "RUNNING"
    assert json.loads(c.config_file().read_text())["http"]["port"] == 8123
    pgid = c.pgid
    with qtbot.waitSignal(c.finished, timeout=10_000) as finished:
        c.stop()
        c.stop()  # idempotent
    assert finished.args == [0]
    assert c.state is ServingState.stopped
    assert states[:1] == ["starting"] and "running" in states and states[-1] == "stopped"
    assert "stopping" in states
    qtbot.waitUntil(lambda: not group_alive(pgid), timeout=5_000)


def test_error_event_reaches_the_user_with_its_hint(fake, controllers, qtbot, monkeypatch):
    c = _make(fake, controllers, qtbot, mode="fail", monkeypatch=monkeypatch)
    reported = []
    c.error_reported.connect(lambda m, h: reported.append((m, h)))
    with qtbot.waitSignal(c.finished, timeout=10_000) as finished:
        c.start(LaunchConfig())
    assert finished.args == [2]
    assert c.state is ServingState.error
    assert reported == [("port 8000 is in use", "pick another port with --port")]
    assert c.last_error == reported[0]


def test_stubborn_supervisor_is_ended_with_its_process_group(fake, controllers, qtbot, monkeypatch):
    c = _make(fake, controllers, qtbot, mode="stubborn", monkeypatch=monkeypatch)
    c.stop_grace_ms = 500
    c.term_grace_ms = 500
    c.start(LaunchConfig())
    qtbot.waitUntil(lambda: c.state is ServingState.running, timeout=10_000)
    members = [p for p in psutil.process_iter() if _pgid(p.pid) == c.pgid]
    assert len(members) >= 2, "the fake and its helper share a group"
    with qtbot.waitSignal(c.finished, timeout=10_000):
        c.stop()
    assert c.state is ServingState.stopped
    # The helper ignores SIGTERM: it goes with the SIGKILL that follows.
    qtbot.waitUntil(lambda: not group_alive(c.pgid), timeout=10_000)


def _pgid(pid):
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def test_non_event_output_goes_to_the_log(fake, controllers, qtbot, monkeypatch):
    from launcher.log_view import LogView

    view = LogView()
    qtbot.addWidget(view)
    c = _make(fake, controllers, qtbot, mode="noisy", monkeypatch=monkeypatch)
    c.start(LaunchConfig())
    qtbot.waitUntil(lambda: c.state is ServingState.running, timeout=10_000)
    qtbot.waitUntil(lambda: "a log line on stderr" in view.plain_text(), timeout=5_000)
    text = view.plain_text()
    assert "not an event line" in text
    assert "[running] serving" in text
    with qtbot.waitSignal(c.finished, timeout=10_000):
        c.stop()


def test_missing_program_is_an_error_not_a_crash(controllers, qtbot):
    c = SupervisorProcess(command=["/nonexistent/python-for-test"])
    controllers.append(c)
    reported = []
    c.error_reported.connect(lambda m, h: reported.append(m))
    c.start(LaunchConfig())
    qtbot.waitUntil(lambda: c.state is ServingState.error, timeout=5_000)
    assert reported and "Could not start the supervisor" in reported[0]


# ---- a supervisor left running ("Quit, keep serving") ----------------------------

def test_attached_supervisor_is_followed_and_stopped(tmp_path, qtbot):
    from launcher.log_view import LogView

    view = LogView()
    qtbot.addWidget(view)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.Popen([sys.executable, fake_path("serving_left_running")], stdout=subprocess.PIPE, text=True,
                            env=env)
    try:
        assert proc.stdout.readline().strip() == "ready"
        record = find_running()
        assert record is not None and record.pid == proc.pid
        c = AttachedSupervisor(record)
        c.poll_ms = 100
        statuses = []
        c.status_changed.connect(statuses.append)
        c.start_following()
        assert c.state is ServingState.running and c.url == "http://127.0.0.1:8124/"
        qtbot.waitUntil(lambda: bool(statuses), timeout=5_000)
        assert statuses[-1].deployments[0].status == "RUNNING"
        # The supervisor's log file is followed (recent lines only).
        qtbot.waitUntil(lambda: "serving at http://127.0.0.1:8124/" in view.plain_text(), timeout=5_000)
        assert "old line" not in view.plain_text()
        with paths.supervisor_log().open("a") as fh:
            fh.write("a new line\n")
        qtbot.waitUntil(lambda: "a new line" in view.plain_text(), timeout=5_000)
        c.stop()
        qtbot.waitUntil(lambda: c.state is ServingState.stopped, timeout=10_000)
        assert proc.wait(timeout=5) == 0
        assert find_running() is None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_stale_record_is_ignored(tmp_path):
    # A pid that no longer runs, or that now belongs to another program, is not "an app left running".
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    paths.write_json_atomic(paths.supervisor_record(), {"pid": dead.pid, "pgid": dead.pid, "url": "x"})
    assert find_running() is None
    other = subprocess.Popen(["sleep", "30"])
    try:
        paths.write_json_atomic(paths.supervisor_record(), {"pid": other.pid, "pgid": other.pid, "url": "x"})
        assert find_running() is None
    finally:
        other.kill()
        other.wait()


def test_output_lines_lose_colour_codes_and_progress_redraws():
    from launcher.supervisor_process import clean_line

    raw = b"\x1b[36m(ServeReplica:app:m pid=7)\x1b[0m Loading:   0%|  | 0/2\rLoading: 100%| 2/2\r"
    assert clean_line(raw) == "(ServeReplica:app:m pid=7) Loading: 100%| 2/2"
    assert clean_line(b"\x1b[33m(raylet)\x1b[0m a warning  ") == "(raylet) a warning"
    assert clean_line("naïve".encode()) == "naïve"
