"""A real two-node Ray cluster started with the `ray start` CLI, ours alone.

Its own GCS/dashboard/agent ports, its own short temp dir, its own token (Ray 2.60 token auth stays
on: RAY_AUTH_MODE=token with RAY_AUTH_TOKEN_PATH pointing at a fresh token file, so nothing here
reads or writes ~/.ray/auth_token). Each `ray start --block` runs in its own session; stop() ends
those sessions by PID (never `ray stop`, which would end every Ray on the machine) and checks that
none of their processes survives.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from supervisor_run import free_port, port_listening

BIN = Path(sys.executable).parent


def _node_ports() -> list[str]:
    """Every per-node port Ray would otherwise take from a default (52365, ...) or at random."""
    args = []
    for flag in ("--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
                 "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port"):
        args += [flag, str(free_port())]
    return args


def _session_pids(sid: int) -> set[int]:
    import psutil

    pids = set()
    for p in psutil.process_iter():
        try:
            if os.getsid(p.pid) == sid and p.status() != psutil.STATUS_ZOMBIE:
                pids.add(p.pid)
        except (OSError, psutil.Error):
            continue
    return pids


class RayCluster:
    """A head (with the dashboard on 127.0.0.1, which `serve deploy` talks to) plus one more raylet
    (none when worker_cpus is 0).

    own_token=False: `ray start` as a user types it, no RAY_AUTH_* in its environment; Ray turns token
    authentication on by itself and keeps the token in $HOME/.ray/auth_token (give base_env a HOME of
    the test's own)."""

    def __init__(self, base_env: dict, head_cpus: int = 1, worker_cpus: int = 2, own_token: bool = True):
        self.head_cpus, self.worker_cpus = head_cpus, worker_cpus
        # Short: Ray's unix sockets live under the temp dir (107-byte path limit).
        self.tmp = Path(tempfile.mkdtemp(prefix="gsc-", dir="/tmp"))
        self.token = secrets.token_hex(32)
        token_file = self.tmp / "token"
        token_file.write_text(self.token)
        token_file.chmod(0o600)
        self.auth_env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token_file)} if own_token else {}
        base_env = base_env if own_token else {k: v for k, v in base_env.items() if not k.startswith("RAY_AUTH")}
        self.env = {
            **base_env, **self.auth_env,
            "RAY_USAGE_STATS_ENABLED": "0",
            # `ray start --block` drains its node on SIGTERM (up to 30 s): not needed for a test cluster.
            "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
        }
        self.env.pop("RAY_ADDRESS", None)
        self.gcs_port, self.dashboard_port = free_port(), free_port()
        self.address = f"127.0.0.1:{self.gcs_port}"
        self.dashboard = f"http://127.0.0.1:{self.dashboard_port}"
        self.procs: list[subprocess.Popen] = []
        self.pids: set[int] = set()

    def _start(self, args: list[str], log: str) -> subprocess.Popen:
        proc = subprocess.Popen(
            [str(BIN / "ray"), "start", "--block", "--node-ip-address", "127.0.0.1", "--disable-usage-stats",
             *args, *_node_ports()],
            env=self.env, cwd=self.tmp, stdout=open(self.tmp / log, "w"), stderr=subprocess.STDOUT,  # noqa: SIM115
            start_new_session=True,  # its own session: we end exactly it, by PID
        )
        self.procs.append(proc)
        return proc

    def start(self, timeout: float = 120) -> None:
        self._start(["--head", "--port", str(self.gcs_port), "--num-cpus", str(self.head_cpus),
                     "--temp-dir", str(self.tmp / "ray"), "--include-dashboard=true",
                     "--dashboard-host", "127.0.0.1", "--dashboard-port", str(self.dashboard_port),
                     "--ray-client-server-port", str(free_port())], "head.log")
        deadline = time.monotonic() + timeout
        while not port_listening(self.gcs_port):
            self._check_alive()
            assert time.monotonic() < deadline, "the head's GCS did not come up"
            time.sleep(0.3)
        if self.worker_cpus:
            self._start(["--address", self.address, "--num-cpus", str(self.worker_cpus)], "worker.log")
        nodes = 2 if self.worker_cpus else 1
        while True:
            self._check_alive()
            status = self.ray_status()
            if status.returncode == 0 and status.stdout.count(" node_") == nodes and f"0.0/{self.head_cpus + self.worker_cpus}.0 CPU" in status.stdout:
                break
            assert time.monotonic() < deadline, f"cluster not up in {timeout} s: {status.stdout[-500:]} {status.stderr[-500:]}"
            time.sleep(1)
        while not _answers(self.dashboard):
            assert time.monotonic() < deadline, "the dashboard did not come up"
            time.sleep(0.5)
        for proc in self.procs:  # gcs_server, raylets, agents, dashboard: all in these sessions
            self.pids |= _session_pids(proc.pid)

    def _check_alive(self) -> None:
        for proc in self.procs:
            if proc.poll() is not None:
                raise AssertionError(f"`ray start` exited {proc.returncode}: see {self.tmp}")

    def ray_status(self) -> subprocess.CompletedProcess:
        # `ray status --address` reads the token only in token mode (a plain `ray start` cluster's env does not say it).
        env = {**self.env, "RAY_AUTH_MODE": "token"}
        return subprocess.run([str(BIN / "ray"), "status", "--address", self.address], check=False, env=env,
                              capture_output=True, text=True, timeout=60)

    def node_ids(self) -> set[str]:
        """The live nodes' ids, from `ray status` (lines like ` 1 node_<hex id>`)."""
        status = self.ray_status()
        assert status.returncode == 0, status.stderr[-1000:]
        return {word.removeprefix("node_") for word in status.stdout.split() if word.startswith("node_")}

    def serve_details(self) -> dict:
        resp = httpx.get(f"{self.dashboard}/api/serve/applications/",
                         headers={"Authorization": f"Bearer {self.token}"}, timeout=30)
        resp.raise_for_status()
        return resp.json()

    def driver(self, code: str, *args: str, timeout: float = 120) -> None:
        run = subprocess.run([sys.executable, "-c", code, self.address, *args], check=False, env=self.env, cwd=self.tmp,
                             capture_output=True, text=True, timeout=timeout)
        assert run.returncode == 0, run.stderr[-2000:]

    def stop(self) -> None:
        """SIGTERM each `ray start --block` (it ends its node's processes), then SIGKILL what is left
        of their sessions; assert that nothing we started survives."""
        for proc in reversed(self.procs):  # the worker node first, then the head
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
        sessions = {p.pid for p in self.procs}
        deadline = time.monotonic() + 20
        left = set()
        while time.monotonic() < deadline:
            left = set().union(*(_session_pids(s) for s in sessions)) | {p for p in self.pids if _alive(p)}
            if not left:
                break
            time.sleep(0.5)
        for pid in left:  # stragglers (agents ignoring SIGTERM): ours, by PID only
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)
        assert not left, f"processes of the test cluster outlived `ray start --block`: {sorted(left)}"
        assert not port_listening(self.gcs_port) and not port_listening(self.dashboard_port)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code < 500
    except httpx.HTTPError:
        return False


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
