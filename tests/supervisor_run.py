"""Runs `gradio-serve up --events` as the launcher does, and ends it (and its group) by PID."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from serving.reaper import group_alive  # noqa: F401 - re-exported for the tests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class Up:
    """One supervisor process; events collected from its stdout on a thread."""

    def __init__(self, args: list[str], env: dict, log_path: Path):
        self.log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "serving.cli", "up", "--events", *args],
            cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
        )
        self.events: list[dict] = []
        self._q: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            self.events.append(event)
            self._q.put(event)
        self._q.put(None)

    def wait_phase(self, *phases: str, timeout: float = 300) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                event = self._q.get(timeout=1)
            except queue.Empty:
                continue
            if event is None:
                raise AssertionError(f"supervisor exited ({self.proc.wait()}) before {phases}: {self.events[-3:]}")
            if event["event"] == "phase" and event["phase"] in phases:
                return event
        raise AssertionError(f"no phase {phases} within {timeout} s; last events: {self.events[-3:]}")

    def wait_running(self, timeout: float = 300) -> dict:
        """The 'running' phase event; fails with the last events when the start ended in an error."""
        event = self.wait_phase("running", "error", timeout=timeout)
        assert event["phase"] == "running", self.events[-3:]
        return event

    def replica_pids(self, deployment: str) -> list[int]:
        """PIDs of this app's Serve replicas of `deployment` (model0, GradioIngress, ...)."""
        name = f"ServeReplica:gradio-serve:{deployment}"
        pids = []
        for proc in psutil.Process(self.proc.pid).children(recursive=True):
            try:
                title = " ".join(proc.cmdline()).split()
            except psutil.Error:
                continue
            # The title is the actor's, plus ".method" while a call runs.
            if any(t.removeprefix("ray::") == name or t.removeprefix("ray::").startswith(name + ".") for t in title):
                pids.append(proc.pid)
        return sorted(pids)

    @property
    def pgid(self) -> int:
        return next(e["pgid"] for e in self.events if e["event"] == "phase")

    def stop(self, how: str = "stdin", timeout: float = 90) -> float:
        """Stop it; return how long the process took to exit."""
        start = time.monotonic()
        if self.proc.poll() is None:
            if how == "stdin":
                self.proc.stdin.write("stop\n")
                self.proc.stdin.flush()
            else:
                self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        finally:
            elapsed = time.monotonic() - start
            self.kill_group()
            self.log.close()
        return elapsed

    def kill_group(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        pgids = {e["pgid"] for e in self.events if e.get("pgid")}
        for pgid in pgids:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
