"""Chaos, as Ray's own release tests do it: replicas killed under load, sessions keeping their state.

tests/apps/counter_state.py (a gr.State counter that says which process answered) runs on 3
replicas. 60 gradio_client sessions bump their counters concurrently for the whole test while one
replica is SIGKILLed every 20 s for 80 s (Serve starts a replacement each time). Then the app
is scaled 3 -> 4 in place (`gradio-serve apply --replicas 4`). Checked, for every call of every session:
- a session whose replica lives counts on without a gap: its state is intact;
- a session whose replica was killed moves once, to a fresh state on a live replica (its count
  starts again at 1 there), and its next call answers; a call may fail only when its replica was
  killed meanwhile;
- no call waits more than 10 s, failed or not;
- scaling 3 -> 4 moves no session and loses no count.
The sessions run in a process of their own (tests/chaos_load.py), ~4 calls a second in all.
About 2.5 minutes on 2 cores.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import pytest
from supervisor_run import ROOT, Up, free_port

pytestmark = pytest.mark.slow

SESSIONS = 60
KILL_EVERY_S, CHAOS_S = 20, 80
MAX_WAIT_S = 10
PAUSE_S = (10.0, 16.0)  # between a session's calls


@dataclass
class Call:
    start: float
    end: float
    count: int | None = None  # None: it failed
    pid: int | None = None
    error: str = ""


@dataclass
class Session:
    calls: list[Call] = field(default_factory=list)


class Load:
    """tests/chaos_load.py: the sessions, in a process of their own; their calls, as they come."""

    def __init__(self, url: str, sessions: list[Session]):
        self.sessions, self.connected = sessions, threading.Event()
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "chaos_load.py"), url, str(len(sessions)),
                                      *map(str, PAUSE_S)], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            said = json.loads(line)
            if "connected" in said:
                self.connected.set()
            else:
                self.sessions[said["session"]].calls.append(
                    Call(said["start"], said["end"], said.get("count"), said.get("pid"), said.get("error", "")))

    def wait_connected(self, timeout: float) -> None:
        assert self.connected.wait(timeout), f"the sessions' clients did not connect in {timeout} s"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()  # its sessions end their calls
            try:
                self.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(timeout=10)


def replicas(up: Up, n: int, timeout: float = 120) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = up.replica_pids("app")
        if len(pids) == n:
            return pids
        time.sleep(0.5)
    raise AssertionError(f"not {n} replicas in {timeout} s: {up.replica_pids('app')}")


def answered_since(sessions: list[Session], since: float, timeout: float) -> None:
    """Until every session has had a call answered or failed that started after `since`: at the
    scaling, no session's move off the last killed replica is still to come."""
    deadline = time.monotonic() + timeout
    while waiting := [i for i, s in enumerate(sessions) if not (s.calls and s.calls[-1].start > since)
                      and not (s.calls and s.calls[-1].error.startswith("connect:"))]:  # gave up: judged later
        assert time.monotonic() < deadline, f"sessions {waiting[:10]} made no call for {timeout} s"
        time.sleep(0.5)


def judge(session: Session, kills: list[tuple[float, int]], scaled_at: float) -> list[str]:
    """What went wrong in one session's calls (empty: all is well)."""
    killed_at = {pid: t for t, pid in kills}
    problems, last = [], None  # last: the last answered call
    for i, call in enumerate(session.calls):
        if call.end - call.start > MAX_WAIT_S:
            problems.append(f"call {i} waited {call.end - call.start:.1f} s ({call.error or 'answered'})")
        if call.count is None:
            home = last.pid if last else None
            if home is None and any(call.start <= t <= call.end for t, _ in kills):
                continue  # a first call, on a replica it never named: a kill during it may be why
            if home not in killed_at or killed_at[home] > call.end:
                problems.append(f"call {i} failed while its replica {home} lived: {call.error}")
            elif call.start >= scaled_at:
                problems.append(f"call {i} failed after the scaling: {call.error}")
            continue
        if last is None:
            if call.count != 1:
                problems.append(f"call {i}: a new session starts at {call.count}")
        elif call.pid == last.pid:
            if call.count != last.count + 1:
                problems.append(f"call {i}: count {last.count} -> {call.count} on replica {call.pid}")
        else:  # moved: only off a replica that was killed, to a fresh state, and never during the scaling
            if last.pid not in killed_at or killed_at[last.pid] > call.end:
                problems.append(f"call {i}: moved {last.pid} -> {call.pid} while {last.pid} lived")
            if call.count != 1:
                problems.append(f"call {i}: moved to {call.pid} with count {call.count}, not a fresh 1")
            if call.start >= scaled_at:
                problems.append(f"call {i}: moved during the scaling")
        last = call
    if session.calls and session.calls[-1].count is None:
        problems.append(f"its last call failed: {session.calls[-1].error}")
    return problems


def test_replicas_killed_every_20_s_under_60_sessions_then_scaled_3_to_4(tmp_path):
    env = {**os.environ, "GRADIO_SERVE_STATE_DIR": str(tmp_path / "state"),
           "GRADIO_SERVE_LOG_DIR": str(tmp_path / "logs")}
    up = Up(["--app", "tests/apps/counter_state.py", "--replicas", "3", "--num-cpus", "0.25",
             "--port", str(free_port())], env, tmp_path / "up.log")
    sessions = [Session() for _ in range(SESSIONS)]
    load: Load | None = None
    kills: list[tuple[float, int]] = []
    scaled_at = float("inf")
    try:
        url = up.wait_running(timeout=300)["url"]
        replicas(up, 3)
        load = Load(url, sessions)
        load.wait_connected(timeout=180)
        chaos_end = time.monotonic() + CHAOS_S
        while time.monotonic() < chaos_end:
            time.sleep(KILL_EVERY_S)
            pids = up.replica_pids("app")
            assert pids, "no replica left to kill"
            victim = random.choice(pids)
            kills.append((time.monotonic(), victim))  # before the kill: a call ending meanwhile may fail
            os.kill(victim, signal.SIGKILL)
        replicas(up, 3)  # Serve replaced the last one
        answered_since(sessions, kills[-1][0], timeout=PAUSE_S[1] + MAX_WAIT_S + 10)  # the last kill's sessions moved
        scaled_at = time.monotonic()
        applied = subprocess.run([sys.executable, "-m", "serving.cli", "apply", "--replicas", "4"], cwd=ROOT,
                                 env=env, capture_output=True, text=True, timeout=180, check=False)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        replicas(up, 4)
        time.sleep(10)
    finally:
        if load is not None:
            load.stop()
        up.stop()
    calls = [c for s in sessions for c in s.calls]
    waits = sorted(c.end - c.start for c in calls)
    summary = (f"{len(calls)} calls, {sum(c.count is None for c in calls)} failed, {len(kills)} kills; "
               f"wait p50 {waits[len(waits) // 2]:.2f} s, p95 {waits[int(len(waits) * 0.95)]:.2f} s, max {waits[-1]:.2f} s")
    print(summary)
    # What the app's port said of the moves: a replica that refused a connection, a session re-homed.
    relay_said = [f"{t:7.1f} s {e['message']}" for t, e in up.timed_events if e.get("event") == "log" and any(
        what in e.get("message", "") for what in ("refused a connection", "move to the others", " now goes "))]
    print(f"kills at {[(round(t - up.t0, 1), pid) for t, pid in kills]}; the app's port said:",
          *relay_said, sep="\n  ")
    problems = {i: p for i, s in enumerate(sessions) if (p := judge(s, kills, scaled_at))}
    assert not problems, (summary, {i: (p, [(round(c.start - up.t0, 1), c.pid, c.count) for c in sessions[i].calls])
                                    for i, p in list(problems.items())[:5]})
    assert len(kills) == CHAOS_S // KILL_EVERY_S and len(calls) > SESSIONS * 6, summary  # ~8 each at this pace
    assert all(s.calls and s.calls[-1].start > scaled_at for s in sessions)  # all went on after the scaling
