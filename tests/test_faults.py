"""Faults, as a user would meet them.

- A model replica killed hard (SIGKILL): Serve replaces it, the status events show the dip
  (replicas_running drops) and the recovery, and the app answers again with no restart.
- The supervisor killed hard (SIGKILL): no process of the app outlives it for long (the
  serving/cluster/reaper.py watchdog ends the group); the time is measured and reported.
(Start while already running is refused: tests/test_serving_e2e.py.)
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time

import httpx
import psutil
import pytest
from supervisor_run import ROOT, Up, free_port

pytestmark = pytest.mark.slow

ARTIFACTS = ROOT / "test-artifacts"


def ask(base: str, text: str = "The cat sat on the mat.", timeout: float = 30) -> bool:
    """One prompt over the REST API; True when it answered (bounded by timeout)."""
    try:
        with httpx.Client(base_url=base, timeout=timeout) as client:
            post = client.post("gradio_api/call/summarize", json={"data": [text]})
            if post.status_code != 200:
                return False
            stream = client.get(f"gradio_api/call/summarize/{post.json()['event_id']}").text
    except httpx.HTTPError:
        return False
    if "event: complete" not in stream:
        return False
    data = stream.split("event: complete\ndata:", 1)[1].strip().splitlines()[0]
    (answer,) = json.loads(data)
    return bool(answer.strip()) and not answer.startswith("⚠")


def model_status(event: dict) -> dict | None:
    if event.get("event") != "status":
        return None
    return next((d for d in event["deployments"] if d["name"] == "model0"), None)


def app_pids(up: Up) -> set[int]:
    root = psutil.Process(up.proc.pid)
    pids = {root.pid} | {c.pid for c in root.children(recursive=True)}
    for p in psutil.process_iter():
        try:
            if os.getpgid(p.pid) == up.pgid:
                pids.add(p.pid)
        except OSError:
            continue
    return pids


def living(pids: set[int], exclude: int) -> list[psutil.Process]:
    alive = []
    for pid in pids - {exclude}:
        try:
            p = psutil.Process(pid)
            if p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p)
        except psutil.Error:
            continue
    return alive


def record(name: str, value: dict) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "faults.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[name] = value
    path.write_text(json.dumps(data, indent=2))
    print(f"\n{name}: {json.dumps(value)}")


def test_killed_replica_is_replaced_and_the_app_answers_again(tiny_models, serving_env, tmp_path):
    up = Up(["--model", tiny_models["seq2seq"], "--port", str(free_port())], serving_env, tmp_path / "up.log")
    try:
        running = up.wait_running()
        base = running["url"]
        assert ask(base)
        replicas = up.replica_pids("model0")
        assert len(replicas) == 1, replicas
        seen_before = len(up.events)

        killed_at = time.monotonic()
        os.kill(replicas[0], signal.SIGKILL)
        answered_at = None
        deadline = killed_at + 180
        while time.monotonic() < deadline:
            if ask(base, timeout=20):
                answered_at = time.monotonic()
                break
            time.sleep(0.5)
        assert answered_at, f"no answer within 180 s of the kill; last events {up.events[-3:]}"

        # The status events after the kill show the dip, then the replacement running.
        recovered_at = None
        dip = None
        while time.monotonic() < deadline:
            after = [model_status(e) for e in up.events[seen_before:]]
            after = [d for d in after if d]
            dip = next((i for i, d in enumerate(after) if d["replicas_running"] < d["replicas_target"]), None)
            if dip is not None and any(d["replicas_running"] == d["replicas_target"] == 1 for d in after[dip:]):
                recovered_at = time.monotonic()
                break
            time.sleep(0.5)
        assert dip is not None, f"no dip in the status events: {after}"
        assert recovered_at, f"no recovery in the status events: {after}"
        new = up.replica_pids("model0")
        assert new and replicas[0] not in new
        record("replica_sigkill", {"answers_again_after_s": round(answered_at - killed_at, 2),
                                   "status_recovered_after_s": round(recovered_at - killed_at, 2),
                                   "status_sequence": [(d["status"], d["replicas_running"], d["replicas_target"])
                                                       for d in after]})
        assert up.proc.poll() is None, "the supervisor must keep running through a replica failure"
    finally:
        up.stop()


def test_killed_supervisor_leaves_no_process_behind(tiny_models, serving_env, tmp_path):
    port = free_port()
    up = Up(["--model", tiny_models["seq2seq"], "--port", str(port)], serving_env, tmp_path / "up.log")
    try:
        running = up.wait_running()
        assert ask(running["url"])
        pids = app_pids(up)
        assert len(pids) >= 6, pids  # supervisor, reaper, GCS, raylet, agents, workers

        killed_at = time.monotonic()
        up.proc.send_signal(signal.SIGKILL)
        up.proc.wait(timeout=10)
        gone_after = None
        left: list = []
        while time.monotonic() < killed_at + 60:
            left = living(pids, exclude=up.proc.pid)
            if not left:
                gone_after = time.monotonic() - killed_at
                break
            time.sleep(0.25)
        names = []
        for p in left:
            with contextlib.suppress(psutil.Error):
                names.append(" ".join(p.cmdline())[:80])
        record("supervisor_sigkill", {"processes": len(pids), "all_gone_after_s": gone_after and round(gone_after, 2),
                                      "left": names})
        assert gone_after is not None, f"still alive 60 s after the supervisor's SIGKILL: {names}"
        assert gone_after < 30, gone_after
        with pytest.raises(httpx.HTTPError):
            httpx.get(running["url"], timeout=5)
    finally:
        up.kill_group()
        up.log.close()
