"""The supervisor QProcess wrapper and the detached-app follower, with a tiny fake supervisor.

A narrow unit: the fake speaks serving/events.py's protocol (phase with pid/pgid,
status, error, stop/detach on stdin) so the wrapper's parsing, state changes,
grace-period kill of the process group and error reporting are checked in a
second each. The real supervisor is exercised in test_launcher_cycle.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import psutil
import pytest

from launcher.attached import AttachedSupervisor, find_running
from launcher.supervisor_process import ServingState, SupervisorProcess, group_alive
from serving import paths
from serving.config import LaunchConfig

FAKE = textwrap.dedent(
    r'''
    """Fake `gradio-serve up --events`: FAKE_MODE = ok | fail | stubborn | noisy."""
    import json, os, subprocess, sys, threading, time
    os.setpgid(0, 0)
    mode = os.environ.get("FAKE_MODE", "ok")
    args = sys.argv[1:]
    config = json.load(open(args[args.index("--config") + 1]))
    port = config.get("http", {}).get("port", 8000)
    url = f"http://127.0.0.1:{port}/"
    def emit(event, **kw):
        print(json.dumps({"event": event, "time": time.time(), **kw}), flush=True)
    emit("phase", phase="validating", message="checking", url=None, pid=os.getpid(), pgid=os.getpgrp())
    if mode == "fail":
        emit("error", message="port 8000 is in use", hint="pick another port with --port")
        emit("phase", phase="error", message="failed", url=None, pid=os.getpid(), pgid=os.getpgrp())
        sys.exit(2)
    # A helper in the same process group, like Ray's agents.
    stubborn = "import time, signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)"
    child = subprocess.Popen([sys.executable, "-c", stubborn])
    if mode == "noisy":
        print("not an event line", flush=True)
        print("a log line on stderr", file=sys.stderr, flush=True)
    emit("phase", phase="deploying", message="deploying", url=url, pid=os.getpid(), pgid=os.getpgrp())
    deps = [{"name": "Model0", "label": "m0", "model": m.get("model", "smollm2-135m-instruct"), "status": "RUNNING",
             "replicas_running": m.get("replicas", 1), "replicas_target": m.get("replicas", 1), "message": ""}
            for m in config["models"]]
    emit("status", app_status="RUNNING", deployments=deps)
    emit("phase", phase="running", message="serving", url=url, pid=os.getpid(), pgid=os.getpgrp())
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "stop" and mode != "stubborn":
            emit("phase", phase="stopping", message="stopping", url=url, pid=os.getpid(), pgid=os.getpgrp())
            child.terminate(); child.kill(); child.wait()
            emit("phase", phase="stopped", message="stopped", url=None, pid=os.getpid(), pgid=os.getpgrp())
            sys.exit(0)
    if mode == "stubborn":
        time.sleep(300)
    child.kill()
    '''
)

pytestmark = pytest.mark.usefixtures("launcher_env")  # see conftest.py


@pytest.fixture
def fake(tmp_path):
    script = tmp_path / "fake_supervisor.py"
    script.write_text(FAKE)
    return [sys.executable, str(script)]


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
    assert statuses and statuses[-1]["deployments"][0]["status"] == "RUNNING"
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

DETACHED = textwrap.dedent(
    r"""
    import json, os, signal, sys, time
    from serving import paths
    os.setpgid(0, 0)
    url = "http://127.0.0.1:8124/"
    paths.write_json_atomic(paths.supervisor_record(), {"pid": os.getpid(), "pgid": os.getpgrp(), "url": url,
        "config": {"mode": "summarize", "http": {"port": 8124}}, "started": time.time()})
    paths.log_dir().mkdir(parents=True, exist_ok=True)
    paths.supervisor_log().write_text("old line\n" + "x" * 5000 + "\nserving at " + url + "\n")
    paths.write_json_atomic(paths.status_record(), {"phase": "running", "url": url, "app_status": "RUNNING",
        "deployments": [{"name": "Model0", "label": "m0", "model": "smollm2-135m-instruct", "status": "RUNNING",
                         "replicas_running": 1, "replicas_target": 1, "message": ""}]})
    def bye(*_):
        paths.supervisor_record().unlink(missing_ok=True)
        sys.exit(0)
    signal.signal(signal.SIGTERM, bye)
    print("ready", flush=True)
    time.sleep(120)
    """
)


def test_attached_supervisor_is_followed_and_stopped(tmp_path, qtbot):
    from launcher.log_view import LogView

    view = LogView()
    qtbot.addWidget(view)
    script = tmp_path / "serving_detached_fake.py"  # "serving" in the command line, as the real one has
    script.write_text(DETACHED)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "ready"
        record = find_running()
        assert record is not None and record["pid"] == proc.pid
        c = AttachedSupervisor(record)
        c.poll_ms = 100
        statuses = []
        c.status_changed.connect(statuses.append)
        c.start_following()
        assert c.state is ServingState.running and c.url == "http://127.0.0.1:8124/"
        qtbot.waitUntil(lambda: bool(statuses), timeout=5_000)
        assert statuses[-1]["deployments"][0]["status"] == "RUNNING"
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
