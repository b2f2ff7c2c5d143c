"""The launcher with the real supervisor (`gradio-serve up --events`), real Ray and tiny models.

1. The window's full cycle: Start -> status Running -> the page answers 200 -> Stop ->
   Stopped -> the supervisor's process group (Ray included) is gone, the port is free.
2. SIGKILL of a real `python -m launcher.app --start` process: the supervisor sees its
   stdin close and everything it started ends within ~30 s.
3. "Quit, keep serving": the launcher exits, the app keeps answering, and the next launch
   finds it (URL, status) and stops it.

Slow (a local Ray cluster each); every process started here is ended by PID at the end.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import contextlib

import psutil
import pytest
from supervisor_run import free_port

from launcher import errors
from launcher.settings import Settings
from launcher.supervisor_process import SupervisorProcess, group_alive

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_MS = 240_000  # cold Ray + Serve + Gradio on 2 cores is ~20 s; leave room on a loaded CI box

pytestmark = pytest.mark.slow


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def http_get(url: str) -> int | None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=10) as resp:
            return resp.status
    except Exception:  # noqa: BLE001 - any failure means "not answering"
        return None


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def alive(procs: list[psutil.Process]) -> list[str]:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(f"{p.pid} {' '.join(p.cmdline())[:100]}")
        except psutil.Error:
            pass
    return out


def wait_for(predicate, timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def group_members(pgid: int | None) -> list[str]:
    """Live (non-zombie) processes of a process group, for checks and failure messages."""
    out = []
    if not pgid:
        return out
    for p in psutil.process_iter(["pid", "status", "cmdline"]):
        try:
            if os.getpgid(p.pid) == pgid and p.info["status"] != psutil.STATUS_ZOMBIE:
                out.append(f"{p.pid} {p.info['status']} {' '.join(p.info['cmdline'] or [])[:100]}")
        except (OSError, psutil.Error):
            pass
    return out


def healthy(rows: list[tuple[str, ...]]) -> bool:
    """Every deployment (the Gradio ingress and each model) is up, in Serve's words."""
    return bool(rows) and all(r[1] in ("HEALTHY", "RUNNING") for r in rows)


def kill_all(procs: list[psutil.Process], pgid: int | None) -> None:
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.kill()
    if pgid and group_alive(pgid):
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGKILL)


def tiny_model_window(qtbot, model: str):
    """A real window, its catalog loaded, set to serve `model` with 1 CPU on a free port: (window, port)."""
    from launcher.window import MainWindow

    window = MainWindow(Settings(), open_browser=False)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.form.catalog_loaded, timeout=30_000)
    window.form.rows[0].model.setEditText(model)
    window.form.rows[0].cpus.setValue(1)
    port = free_port()
    window.form.port.setValue(port)
    return window, port


def test_full_cycle_start_running_page_stop_nothing_left(qtbot, tiny_models, launcher_env):
    window, port = tiny_model_window(qtbot, tiny_models["seq2seq"])

    window.start_serving(interactive=False)
    qtbot.waitUntil(lambda: isinstance(window.controller, SupervisorProcess) and window.controller.pid, timeout=60_000)
    controller = window.controller
    tree: list[psutil.Process] = []
    try:
        qtbot.waitUntil(
            lambda: window.state_text().startswith("Running") or window.state_text().startswith("Failed"),
            timeout=START_TIMEOUT_MS,
        )
        assert window.state_text().startswith("Running"), window.log_view.plain_text()[-3000:]
        url = controller.url
        assert url == f"http://127.0.0.1:{port}/"
        tree = [psutil.Process(controller.pid)] + descendants(controller.pid)
        assert controller.pgid and controller.pgid != os.getpgrp()

        # The status panel follows the supervisor's status events.
        qtbot.waitUntil(lambda: healthy(window.status_table.rows()), timeout=30_000)
        models = [r for r in window.status_table.rows() if tiny_models["seq2seq"] in r[0]]
        assert models and models[0][2] == "1/1", window.status_table.rows()
        assert window.stop_button.isEnabled() and window.open_button.isEnabled()

        assert http_get(url) == 200
        pgid = controller.pgid

        window.stop_serving()
        qtbot.waitUntil(lambda: window.state_text() == "Stopped", timeout=120_000)
        assert window.status_table.rows() == []
        assert window.start_button.isEnabled()
        # qtbot.waitUntil, not sleep: the launcher's own clean-up runs on its event loop.
        try:
            qtbot.waitUntil(lambda: not group_members(pgid) and not alive(tree), timeout=30_000)
        except qtbot.TimeoutError:
            pytest.fail(f"left behind: group {group_members(pgid)}, tree {alive(tree)}")
        assert wait_for(lambda: port_free(port), 10), f"port {port} still taken"
        assert errors.last_dialog is None, errors.last_dialog and errors.last_dialog.text()
    finally:
        if controller.running():
            controller.kill_now(wait_s=10)
        kill_all(tree, controller.pgid)


def _start_launcher(tiny_models, tmp_path, port: int) -> tuple[subprocess.Popen, dict, Path]:
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps({"models": [{"model": tiny_models["seq2seq"], "num_cpus": 1}], "http": {"port": port}})
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    for name in ("GRADIO_SERVE_STATE_DIR", "GRADIO_SERVE_LOG_DIR", "GRADIO_SERVE_CACHE_DIR"):
        env.pop(name, None)
    log = tmp_path / "launcher.out"
    # Its own session, so a SIGKILL to it cannot reach pytest.
    launcher = subprocess.Popen(
        [sys.executable, "-m", "launcher.app", "--start", "--no-browser", "--config", str(config)],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return launcher, env, log


def _wait_running(launcher: subprocess.Popen, log: Path) -> dict:
    from serving.core import paths

    def running() -> bool:
        status = _read(paths.status_record())
        return bool(status) and status.get("phase") == "running"

    ok = wait_for(lambda: running() or launcher.poll() is not None, START_TIMEOUT_MS / 1000, 1.0)
    assert ok and launcher.poll() is None, log.read_text()[-3000:]
    record = _read(paths.supervisor_record())
    assert record and record.get("pgid") and record.get("pid")
    return record


def test_killing_the_launcher_leaves_no_ray_process(tiny_models, launcher_env, tmp_path):
    port = free_port()
    launcher, _env, log = _start_launcher(tiny_models, tmp_path, port)
    tree: list[psutil.Process] = []
    pgid = None
    try:
        record = _wait_running(launcher, log)
        pgid = int(record["pgid"])
        assert http_get(f"http://127.0.0.1:{port}/") == 200
        tree = descendants(launcher.pid)
        assert any(p.pid == int(record["pid"]) for p in tree), "the supervisor is the launcher's child"
        assert len(tree) > 2, "Ray's processes run under the supervisor"

        launcher.send_signal(signal.SIGKILL)
        launcher.wait(timeout=10)
        gone = wait_for(lambda: not alive(tree) and not group_members(pgid), 30, 1.0)
        assert gone, f"still running 30 s after the launcher was killed: {alive(tree)} {group_members(pgid)}"
        assert wait_for(lambda: port_free(port), 10)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
        kill_all(tree, pgid)


def test_quit_keep_serving_then_the_next_launch_finds_and_stops_it(qtbot, tiny_models, launcher_env, tmp_path):
    from launcher.attached import find_running
    from launcher.window import MainWindow

    port = free_port()
    launcher, env, log = _start_launcher(tiny_models, tmp_path, port)
    tree: list[psutil.Process] = []
    pgid = None
    try:
        record = _wait_running(launcher, log)
        pgid = int(record["pgid"])
        tree = descendants(launcher.pid)
        asked = subprocess.run(
            [sys.executable, "-m", "launcher.app", "--quit-keep-serving"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert asked.returncode == 0, asked.stderr
        assert launcher.wait(timeout=30) == 0
        time.sleep(5)  # the launcher's pipes are closed now; the app must not notice
        assert alive([p for p in tree if p.pid == int(record["pid"])]), log.read_text()[-3000:]
        assert http_get(f"http://127.0.0.1:{port}/") == 200

        found = find_running()
        assert found and found.pid == record["pid"]
        window = MainWindow(Settings(), open_browser=False)
        qtbot.addWidget(window)
        window.attach(found)
        assert window.state_text().startswith("Running") and f":{port}/" in window.state_label.text()
        assert window.stop_button.isEnabled() and not window.start_button.isEnabled()
        qtbot.waitUntil(lambda: healthy(window.status_table.rows()), timeout=10_000)

        window.stop_serving()
        qtbot.waitUntil(lambda: window.state_text() == "Stopped", timeout=120_000)
        try:
            qtbot.waitUntil(lambda: not group_members(pgid) and not alive(tree), timeout=30_000)
        except qtbot.TimeoutError:
            pytest.fail(f"left behind: group {group_members(pgid)}, tree {alive(tree)}")
        assert wait_for(lambda: port_free(port), 10)
        assert find_running() is None
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
        kill_all(tree, pgid)


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def test_supervisor_killed_hard_shows_an_error_and_start_works_again(qtbot, tiny_models, launcher_env):
    """SIGKILL the supervisor under the window: the user is told, nothing of Ray survives
    (its watchdog ends the group), and Start brings the app back."""
    window, port = tiny_model_window(qtbot, tiny_models["seq2seq"])

    def start_and_wait_running():
        window.start_serving(interactive=False)
        qtbot.waitUntil(lambda: isinstance(window.controller, SupervisorProcess) and bool(window.controller.pid),
                        timeout=60_000)
        qtbot.waitUntil(lambda: window.state_text().startswith(("Running", "Failed")), timeout=START_TIMEOUT_MS)
        assert window.state_text().startswith("Running"), window.log_view.plain_text()[-3000:]
        return window.controller

    first = start_and_wait_running()
    pgid = first.pgid
    tree = [psutil.Process(first.pid)] + descendants(first.pid)
    second = None
    try:
        os.kill(first.pid, signal.SIGKILL)
        qtbot.waitUntil(lambda: not window.state_text().startswith("Running"), timeout=30_000)
        assert not window.state_text().startswith("Running")
        assert errors.last_dialog is not None or "error" in window.state_text().lower() or \
            "fail" in window.state_text().lower(), window.state_text()
        killed_at = time.monotonic()
        try:
            qtbot.waitUntil(lambda: not group_members(pgid) and not alive(tree), timeout=60_000)
        except qtbot.TimeoutError:
            pytest.fail(f"left behind: group {group_members(pgid)}, tree {alive(tree)}")
        print(f"everything of the killed supervisor gone {time.monotonic() - killed_at:.1f} s after SIGKILL")
        assert wait_for(lambda: port_free(port), 20), f"port {port} still taken"

        errors.last_dialog = None
        second = start_and_wait_running()
        assert http_get(second.url) == 200
        window.stop_serving()
        qtbot.waitUntil(lambda: window.state_text() == "Stopped", timeout=120_000)
    finally:
        for controller in (first, second):
            if controller is not None and controller.running():
                controller.kill_now(wait_s=10)
        kill_all(tree, pgid)
        if second is not None:
            kill_all([], second.pgid)
