"""Reload on save (`gradio-serve up --app demo.py --reload`): the supervisor's side.

watchfiles follows the app's folder (its .py files; not .git, __pycache__, .venv, ...). On a save:
- On our own cluster, each replica is asked on its own port to build the saved code's app (the
  replicas share the app's folder). That is the check: a replica that fails says why (file, line and
  fix). Only when every one built it are they asked to use it; Serve is then told the new code (a code
  stamp in the app deployment's user_config), for replicas started later.
- Elsewhere (a cluster of `--address`, or a replica on another machine), the new code is imported in a
  child process first, a fork of one that imported Gradio once, so a check costs only the app's import.
  Then a redeploy whose only change is the user_config (the stamp, and the saved files, which such
  replicas run from a copy of); the version is pinned, so Serve calls every replica's `reconfigure()`,
  which swaps the app in place (serving/replica/app_swap.py).
Broken: a `log` warning with the file, line and fix, and the running version goes on. The user's code
never runs in the supervisor.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from serving.cluster.app_inspection import APP_IMPORT_TIMEOUT_S
from serving.core.config import APP_DEPLOYMENT, AppSpec
from serving.core.inspection import Inspection
from serving.core.process_group import group_alive
from serving.core.target import app_folder, parse_target
from serving.front.sessions import SWAP_KEY_ENV, SWAP_KEY_HEADER, SWAP_PATH

WATCH_STEP_MS = 50  # an editor's save is a burst of events: taken once the folder is quiet that long
SWAP_TIMEOUT_S = 120  # the replicas' reconfigure, seen as the app RUNNING again
STATUS_POLL_S = 0.2  # each poll costs the controller, which is busy with the swap


class WarmCheck:
    """The inspector (`python -m serving.replica.app_target --when-asked`): one process with Gradio imported,
    which checks each save in a fork of itself, so a check costs only the app's own import, however close
    the saves come. Its own session: a check that hangs is ended with its fork."""

    def __init__(self, spec: AppSpec, login_given: bool, warm: bool = True):
        """warm: started now (else at its first check, and kept from then on)."""
        self._argv = [sys.executable, "-m", "serving.replica.app_target", spec.target, "--json", "--when-asked"]
        self._argv += (["--app-dir", spec.app_dir] if spec.app_dir else []) + (["--login-given"] if login_given else [])
        self.target = spec.target
        self._wanted = warm
        self._proc: subprocess.Popen | None = self._spawn() if warm else None

    def _spawn(self) -> subprocess.Popen:
        return subprocess.Popen(self._argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=sys.stderr,
                                text=True, start_new_session=True)

    def check(self) -> Inspection:
        self._wanted = True
        if self._proc is None or self._proc.poll() is not None:
            self._proc = self._spawn()
        proc, found, code = self._proc, None, None
        timer = threading.Timer(APP_IMPORT_TIMEOUT_S, self.close)
        timer.start()
        try:
            proc.stdin.write("check\n")
            proc.stdin.flush()
            for line in proc.stdout:  # the verdict, then `done CODE` once its fork ended
                if line.startswith("done "):
                    code = int(line.split()[1])
                    break
                found = found or Inspection.from_line(line)
        except OSError:
            pass  # it ended early (killed while stopping, or by the timer)
        finally:
            timer.cancel()
        if found is not None:
            return found
        if code is None:
            self.close()
            return Inspection(ok=False, target=self.target,
                              error=f"importing {self.target} took more than {APP_IMPORT_TIMEOUT_S} s",
                              hint="does the app wait for input or a server at import time?")
        return Inspection(ok=False, target=self.target, error=f"importing {self.target} crashed "
                          f"(exit code {code})", hint=f"run `python {self.target.split(':')[0]}` to see why")

    def warm_up(self) -> None:
        """A new inspector, where the last one was ended (a check that hung)."""
        if self._wanted and (self._proc is None or self._proc.poll() is not None):
            self._proc = self._spawn()

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # it and a fork that hangs
            proc.wait()
            # The fork is the inspector's child, not ours to wait for: under load it was still alive just after
            # (a whole test run). Briefly wait for the group to be gone, so nothing of a check outlives close().
            deadline = time.monotonic() + 2
            while group_alive(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.02)


class Reloader:
    """Needs of the supervisor: config, events, _announced (a save before the app first runs waits)."""

    def __init__(self, supervisor):
        self.supervisor = supervisor
        spec = supervisor.config.app
        self.folder = app_folder(parse_target(spec.target), spec.app_dir).resolve()
        self.code: dict | None = None  # the app deployment's user_config since the first reload
        # While Serve reconfigures the replicas it leaves them out of their target group, yet they serve:
        # the app's port keeps sending to them (serving/cluster/relay_feed.py is not asked meanwhile).
        self.swapping = threading.Event()
        self._files: dict[str, str] = {}  # what was saved, for replicas that run in a copy of the folder
        self._stop = threading.Event()
        # On our own cluster the replicas check a save themselves (their build): the child waits until needed.
        own = supervisor.owns_cluster and not supervisor.config.cluster.join_address and not supervisor._serve_app
        self._check = WarmCheck(spec, login_given=bool(supervisor.config.http.username), warm=not own)
        self._thread = threading.Thread(target=self._follow, name="reloader", daemon=True)
        self._thread.start()

    @classmethod
    def start_for(cls, supervisor) -> Reloader | None:
        app = supervisor.config.app
        return cls(supervisor) if app is not None and app.reload else None

    def stop(self) -> None:
        self._stop.set()
        self._check.close()

    def _follow(self) -> None:
        from watchfiles import PythonFilter, watch

        self._say("info", f"reload on save: watching {self.folder}")
        for changes in watch(self.folder, watch_filter=PythonFilter(), step=WATCH_STEP_MS, stop_event=self._stop,
                             rust_timeout=500, yield_on_timeout=False):
            while not self.supervisor._announced and not self._stop.wait(0.1):
                pass  # the first version (or an apply) is still deploying
            if self._stop.is_set():
                return
            try:
                self.reload(sorted({Path(path) for _, path in changes}))
            except Exception as exc:  # noqa: BLE001 - the watch goes on; the running version too
                self._say("warning", f"reload failed, the running version goes on: {type(exc).__name__}: {exc}")
            if not self._stop.is_set():
                self._check.warm_up()

    def reload(self, changed: list[Path]) -> bool:
        started = time.monotonic()
        names = ", ".join(p.name for p in changed) or "the app"
        stamp, ports = f"{time.time_ns():x}", self._own_replica_ports()
        # Our replicas build the saved code's app, which checks it: each says what broke, or that it is
        # ready to use. Elsewhere (or if one could not be asked) the check child does, before Serve's way.
        verdict = _built_everywhere(ports, stamp, self._check.target) if ports else None
        if verdict is None:
            ports, verdict = [], self._check.check()
        checked = time.monotonic()
        if self._stop.is_set():
            return False
        if not verdict.ok:
            self._say("warning", f"{names} not reloaded, the running version goes on: {verdict.error}"
                      + (f" (fix: {verdict.hint})" if verdict.hint else ""))
            return False
        config = self.supervisor.config
        if config.cluster.address:
            self._files.update(_saved(self.folder, changed))
        self.code = {"code": stamp, "files": dict(self._files)}
        # A Serve application file rolls out new replicas, which the app's port must follow as they come.
        if not self.supervisor._serve_app:
            self.swapping.set()
        try:
            swapped = bool(ports) and all(a["ok"] for a in _ask_all(ports, stamp, "use"))
            if swapped:
                self._said_reloaded(names, started, checked, "each asked on its own port")
            relay = self.supervisor._relay
            before = frozenset(relay.replicas) if relay is not None and self.supervisor._serve_app else None
            # Serve's own record of the code, for replicas started later: the swapped ones find it done.
            self.supervisor.submit(self.code)
            running = self._wait_running(before)
        finally:
            self.swapping.clear()
        if not running:
            self._say("warning", f"{names}: the replicas did not take the new code within {SWAP_TIMEOUT_S} s")
            return False
        if not swapped:
            how = "new replicas: a Serve application's code is its deployments" if self.supervisor._serve_app else None
            self._said_reloaded(names, started, checked, how or "through Serve")
        return True

    def _said_reloaded(self, names: str, started: float, checked: float, how: str) -> None:
        now = time.monotonic()
        self._say("info", f"reloaded {names} in {now - started:.2f} s (checked in {checked - started:.2f} s, swapped "
                  f"in {now - checked:.2f} s, {how}): every replica runs the new code")

    def _own_replica_ports(self) -> list[int]:
        """The replicas of our own cluster, asked on their own ports (Serve's reconfigure of every replica
        goes through its controller's loop: ~0.5 s more). Empty when any replica cannot be asked so (another
        machine's, or none known yet): Serve's way then does it."""
        relay = self.supervisor._relay
        if (relay is None or self.supervisor._serve_app or not os.environ.get(SWAP_KEY_ENV)
                or set(relay.replicas) & set(relay.via_proxy)):
            return []
        return list(relay.replicas.values())

    def _wait_running(self, before: frozenset | None = None) -> bool:
        """Until the app runs the new code. `before`: a Serve application file's ingress replicas before the
        rollout; once the app's port has none of them left and the file's other deployments are healthy, the
        new code answers every request, while Serve may still show the old replicas finishing their open
        streams (for up to the file's graceful_shutdown_timeout_s, 20 s by default)."""
        from serving.cluster.status_snapshot import read_app_status

        deadline = time.monotonic() + SWAP_TIMEOUT_S
        while time.monotonic() < deadline and not self._stop.is_set():
            status, _ = read_app_status()
            if status is not None and (str(status.status.value) == "RUNNING" or self._all_new(status, before)):
                return True
            time.sleep(STATUS_POLL_S)
        return False

    def _all_new(self, status, before: frozenset | None) -> bool:
        now = set(self.supervisor._relay.replicas) if before else set()
        return bool(now) and not now & before and all(
            str(d.status.value) == "HEALTHY" for name, d in status.deployments.items() if name != APP_DEPLOYMENT)

    def _say(self, level: str, message: str) -> None:
        self.supervisor.events.emit("log", level=level, message=message)


def _built_everywhere(ports: list[int], stamp: str, target: str) -> Inspection | None:
    """The saved code built in every replica (ok), or the first one's error; None when one did not answer."""
    answers = _ask_all(ports, stamp, "build")
    if any("error" not in a for a in answers):
        return None
    failed = next((a for a in answers if not a["ok"]), None)
    if failed is None:
        return Inspection(ok=True, target=target)
    return Inspection(ok=False, target=target, error=failed["error"], hint=failed.get("hint") or None)


def _ask_all(ports: list[int], stamp: str, step: str) -> list[dict]:
    with ThreadPoolExecutor(len(ports)) as pool:
        return list(pool.map(lambda port: _ask_swap(port, stamp, step), ports))


def _ask_swap(port: int, stamp: str, step: str) -> dict:
    """One replica's answer to SWAP_PATH (serving/replica/gradio_server.py): "build" or "use" the stamp's
    code. {"ok": bool, "error": ...}; without "error" when it did not answer as a replica of ours."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=SWAP_TIMEOUT_S)
    try:
        conn.request("POST", f"{SWAP_PATH}?code={stamp}&step={step}",
                     headers={SWAP_KEY_HEADER: os.environ.get(SWAP_KEY_ENV, ""), "Content-Length": "0"})
        resp = conn.getresponse()
        answer = json.loads(resp.read()) if resp.status in (200, 422) else {}
        return {"error": "", **answer} if "ok" in answer else {"ok": False}
    except (OSError, ValueError):
        return {"ok": False}
    finally:
        conn.close()


def _saved(folder: Path, changed: list[Path]) -> dict[str, str]:
    """The saved .py files that still exist, by their path in the app's folder."""
    saved = {}
    for path in (p.resolve() for p in changed):
        if path.suffix == ".py" and path.is_file() and folder in path.parents:
            try:
                saved[path.relative_to(folder).as_posix()] = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
    return saved
