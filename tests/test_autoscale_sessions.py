"""Scaling keeps sessions: your app scaled 1 -> 2 -> 1 under load while gr.State sessions count on
(serving/front/draining.py).

tests/apps/busy_counter.py runs on 1 replica, loaded by REST calls of its 1 s `work` all along. It is
scaled to 2 (`gradio-serve apply --replicas 2`, as autoscaling would); 6 gradio_client sessions then
start (they spread over both) and bump their counters every 2-3 s; then it is scaled back to 1 with
`--session-drain 30`. Checked:
- the sessions of the removed replica count on there without a gap through its drain (they are in
  use), and the survivor's never move;
- then it is let go, its open streams are ended and it stops; each of its sessions moves once, to a fresh count on the survivor, and answers;
- no call fails or waits more than 10 s.
Serve's autoscaling removes a replica the same way (no new code: the supervisor drains it); driving
it by load is left out as it flaps on 2 busy cores: each open gr.State session also holds one
request (Gradio's heartbeat), which Serve's autoscaling counts as load.
About 3 minutes on 2 cores.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import psutil
import pytest
from app_serving import client, rest_call
from supervisor_run import ROOT, Up, free_port

pytestmark = pytest.mark.slow

DRAIN_S = 30
SESSIONS = 6
LOADERS = 4
MAX_WAIT_S = 10


@dataclass
class Session:
    calls: list[tuple[float, float, int | None, int | None]] = field(default_factory=list)  # start, end, count, pid

    def run(self, url: str, stop: threading.Event) -> None:
        c = client(url)
        while not stop.is_set():
            start = time.monotonic()
            try:
                count, served_by = c.submit(api_name="/bump").result(timeout=30)
                self.calls.append((start, time.monotonic(), int(count), int(served_by.removeprefix("pid "))))
            except Exception:  # noqa: BLE001 - judged below
                self.calls.append((start, time.monotonic(), None, None))
            stop.wait(random.uniform(2.0, 3.0))


def _load(url: str, stop: threading.Event) -> None:
    while not stop.is_set():
        rest_call(url, "work", ["x"])


def _app_replicas(up: Up, pred, timeout: float) -> tuple[float, dict]:
    """(when, the app's deployment) at the first status event whose app deployment `pred` accepts."""
    def app(event):
        return next((d for d in event.get("deployments", ()) if d["name"] == "app"), None)

    _t, event = up.wait_for(lambda e: e.get("event") == "status" and (d := app(e)) is not None and pred(d), timeout)
    return time.monotonic(), app(event)


def _apply(env: dict, replicas: int) -> None:
    applied = subprocess.run([sys.executable, "-m", "serving.cli", "apply", "--replicas", str(replicas)], cwd=ROOT,
                             env=env, capture_output=True, text=True, timeout=180, check=False)
    assert applied.returncode == 0, applied.stdout + applied.stderr


def test_a_replica_that_scaling_removes_keeps_its_sessions_while_they_are_in_use(tmp_path):
    env = {**os.environ, "GRADIO_SERVE_STATE_DIR": str(tmp_path / "state"),
           "GRADIO_SERVE_LOG_DIR": str(tmp_path / "logs")}
    up = Up(["--app", "tests/apps/busy_counter.py", "--replicas", "1", "--num-cpus", "0.5",
             "--session-drain", str(DRAIN_S), "--port", str(free_port())], env, tmp_path / "up.log")
    load_stop, sessions_stop = threading.Event(), threading.Event()
    sessions = [Session() for _ in range(SESSIONS)]
    threads: list[threading.Thread] = []
    try:
        url = up.wait_running(timeout=300)["url"]
        threads = [threading.Thread(target=_load, args=(url, load_stop), daemon=True) for _ in range(LOADERS)]
        for t in threads:
            t.start()
        _apply(env, 2)
        _app_replicas(up, lambda d: d["replicas_running"] == 2, timeout=120)
        both = up.replica_pids("app")
        assert len(both) == 2, both
        session_threads = [threading.Thread(target=s.run, args=(url, sessions_stop), daemon=True) for s in sessions]
        for t in session_threads:
            t.start()
        threads += session_threads
        time.sleep(8)
        down_at = time.monotonic()
        _apply(env, 1)  # answered once the removed replica is gone: after its drain
        removed = None
        deadline = down_at + DRAIN_S + 40
        while removed is None and time.monotonic() < deadline:
            removed = next((p for p in both if not psutil.pid_exists(p)), None)
            time.sleep(0.5)
        ended_at = time.monotonic()
        assert removed is not None, f"no replica of {both} ended within {DRAIN_S + 40} s of the scale-down"
        time.sleep(8)  # its sessions move, and answer
    finally:
        load_stop.set()
        sessions_stop.set()
        for t in threads:
            t.join(timeout=60)
        up.stop()
    survivor = next(p for p in both if p != removed)
    # The supervisor's log says when the relay held the removed replica, and when it let go.
    to_monotonic = time.monotonic() - time.time()
    said = {e["message"].split(":")[0]: e["time"] + to_monotonic for e in up.events
            if e.get("event") == "log" and e["message"].startswith("replica ")}
    held_at = next((t for line, t in said.items() if "was scaled down" in line), None)
    let_go_at = next((t for line, t in said.items() if "let go" in line), None)
    calls = [c for s in sessions for c in s.calls]
    summary = (f"{len(calls)} calls, {sum(c[2] is None for c in calls)} failed; removed {removed} "
               f"{ended_at - down_at:.1f} s after the apply; held {held_at and held_at - down_at:.1f} s after it, "
               f"let go {let_go_at and let_go_at - down_at:.1f} s after it")
    print(summary)
    assert held_at is not None and let_go_at is not None, (summary, said)
    assert let_go_at - held_at > DRAIN_S - 2, summary  # its sessions were in use all along
    assert ended_at - let_go_at < 10, summary  # the streams still open there (heartbeats) were ended
    assert all(c[2] is not None for c in calls), summary
    assert max(c[1] - c[0] for c in calls) <= MAX_WAIT_S, summary
    drained = 0
    for i, s in enumerate(sessions):
        pids = [c[3] for c in s.calls]
        counts = [c[2] for c in s.calls]
        assert s.calls and s.calls[-1][0] > ended_at, f"session {i} did not go on after the drain"
        if pids[0] == survivor:
            assert set(pids) == {survivor} and counts == list(range(1, len(counts) + 1)), (i, s.calls)
            continue
        # On the removed replica: counting on there through its drain, then once to a fresh count.
        moved = pids.index(survivor)
        assert set(pids[:moved]) == {removed} and set(pids[moved:]) == {survivor}, (i, pids)
        assert counts[:moved] == list(range(1, moved + 1)), (i, s.calls)
        assert counts[moved:] == list(range(1, len(counts) - moved + 1)), (i, s.calls)
        assert s.calls[moved - 1][0] > let_go_at - 4, (i, "moved before its drain ended", s.calls)
        assert s.calls[moved][0] > let_go_at - 1, (i, "moved before its drain ended", s.calls)
        drained += 1
    assert drained >= 2, f"only {drained} sessions were on the removed replica"
