"""Reload on save (`gradio-serve up --app demo.py --reload`), end to end with 2 replicas: a good save
reaches every replica (the same processes: swapped in place, not restarted); a broken save is reported
with its file and line while the old version goes on answering; the fix is taken again."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from supervisor_run import Up, free_port

pytestmark = pytest.mark.slow

APP = '''import os

import gradio as gr

VERSION = "v{version}"


def answer(text):
    return f"{{VERSION}} {{os.getpid()}}"


with gr.Blocks() as demo:
    box = gr.Textbox()
    out = gr.Textbox()
    gr.Button("Go").click(answer, box, out, api_name="answer")
'''
BROKEN_LINE = 8  # `def answer(text)` without its colon


def ask(url: str) -> tuple[str, int] | None:
    """(version, replica pid) as a new client (no cookie) gets it; None while it does not answer."""
    try:
        with httpx.Client(timeout=10, trust_env=False) as client:
            event = client.post(f"{url}gradio_api/call/answer", json={"data": ["x"]}).json()["event_id"]
            for line in client.get(f"{url}gradio_api/call/answer/{event}").text.splitlines():
                if line.startswith("data:") and isinstance(data := json.loads(line[5:]), list) and data:
                    version, pid = data[0].split()
                    return version, int(pid)
    except (httpx.HTTPError, ValueError, KeyError):
        return None
    return None


def replicas_answering(url: str, version: str, n: int, timeout: float) -> set[int]:
    """The replica pids that answered `version`, once `n` of them did (new clients take turns)."""
    deadline, pids = time.monotonic() + timeout, set()
    while time.monotonic() < deadline:
        got = ask(url)
        if got and got[0] == version:
            pids.add(got[1])
            if len(pids) >= n:
                return pids
        time.sleep(0.05)
    raise AssertionError(f"{version} answered by {len(pids)} of {n} replicas within {timeout} s")


def test_reload_on_save_with_two_replicas(serving_env, tmp_path):
    app = tmp_path / "demo.py"
    app.write_text(APP.format(version=0))
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    up = Up(["--app", str(app), "--reload", "--replicas", "2", "--num-cpus", "1", "--port", str(port)],
            serving_env, tmp_path / "up.log")
    try:
        up.wait_running(300)
        before = replicas_answering(url, "v0", 2, 60)
        time.sleep(3)  # the reload's check child imports Gradio ahead

        app.write_text(APP.format(version=1))
        saved = time.monotonic()
        assert replicas_answering(url, "v1", 2, 20) == before, "the replicas were restarted, not swapped"
        took = time.monotonic() - saved
        _t, said = up.wait_for(lambda e: e.get("event") == "log" and "reloaded demo.py" in e.get("message", ""), 20)
        assert "each asked on its own port" in said["message"], said["message"]  # not Serve's slower way
        assert took < 10, f"every replica answered the new code only {took:.1f} s after the save"

        app.write_text(APP.format(version=2).replace("def answer(text):", "def answer(text)"))
        _t, said = up.wait_for(lambda e: e.get("event") == "log" and "not reloaded" in e.get("message", ""), 30)
        assert said["level"] == "warning"
        assert f"{app}, line {BROKEN_LINE}" in said["message"], said["message"]
        time.sleep(1)
        assert {ask(url)[0] for _ in range(6)} == {"v1"}, "the broken save replaced the running version"

        app.write_text(APP.format(version=3))
        assert replicas_answering(url, "v3", 2, 20) == before
    finally:
        up.stop()
