"""Both modes end to end: `gradio-serve up` (real Ray, real Serve), answered by gradio_client
and plain HTTP; then stopped, leaving no process and no open port.

Tiny random models come from a Hugging Face cache layout (the hub-id loading path);
one test runs the embedded SmolLM2 model, which also proves the fan-out is concurrent.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import httpx
import psutil
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from supervisor_run import ROOT, Up, free_port, group_alive, port_listening

pytestmark = pytest.mark.slow

ARTICLE = (
    "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. "
    "It is named after the engineer Gustave Eiffel, whose company designed and built the tower "
    "from 1887 to 1889 as the centerpiece of the 1889 World's Fair."
)


def cli(env, *args, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "serving.cli", *args], cwd=ROOT, env=env,
                          check=False, capture_output=True, text=True, timeout=timeout)


def assert_all_gone(up: Up, port: int, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and (group_alive(up.pgid) or port_listening(port)):
        time.sleep(0.5)
    assert not group_alive(up.pgid), [p.cmdline() for p in psutil.process_iter() if _in_group(p, up.pgid)]
    assert not port_listening(port), f"port {port} still open"


def _in_group(p, pgid):
    try:
        import os

        return os.getpgid(p.pid) == pgid
    except OSError:
        return False


def test_summarize_tiny_t5_answers_then_sigterm_leaves_nothing(tiny_models, serving_env, tmp_path):
    port = free_port()
    up = Up(["--model", tiny_models["seq2seq"], "--port", str(port)], serving_env, tmp_path / "up.log")
    try:
        running = up.wait_running()
        assert running["url"] == f"http://127.0.0.1:{port}/"
        # The app's port relays straight to the Gradio replica's own port (not through Serve's proxy).
        assert any(f"port {port} now goes straight to the app's 1 Gradio replica" in e.get("message", "")
                   for e in up.events)

        page = httpx.get(running["url"], timeout=30)
        assert page.status_code == 200 and "gradio" in page.text.lower()

        client = Client(running["url"], verbose=False)
        summary = client.predict(ARTICLE, api_name="/summarize")
        assert isinstance(summary, str) and summary.strip()

        with pytest.raises(AppError, match="enter some text"):
            client.predict("  \n\t ", api_name="/summarize")
        long_text = " ".join(["lorem ipsum dolor sit amet"] * 400)
        assert "cut to" in client.predict(long_text, api_name="/summarize")

        status = cli(serving_env, "status", "--json")
        assert status.returncode == 0, status.stderr
        info = json.loads(status.stdout)
        assert info["running"] and info["app_status"] == "RUNNING"
        names = {d["name"]: d for d in info["deployments"]}
        model = names["model0"]
        assert (model["status"], model["replicas_running"], model["replicas_target"]) == ("HEALTHY", 1, 1)

        second = cli(serving_env, "up", "--port", str(free_port()))
        assert second.returncode == 2 and "already running" in second.stdout
    finally:
        elapsed = up.stop(how="sigterm")
    assert up.proc.returncode == 0
    assert up.events[-1]["phase"] == "stopped"
    assert elapsed < 60
    assert_all_gone(up, port)
    assert cli(serving_env, "status").returncode == 3


def test_fanout_tiny_models_in_slot_order_over_gradio_client_and_http(tiny_models, serving_env, tmp_path):
    port = free_port()
    refs = [tiny_models["causal"], tiny_models["instruct"], tiny_models["seq2seq"]]
    args = ["--mode", "fanout", "--port", str(port)]
    for ref in refs:
        args += ["--model", ref]
    up = Up(args + ["--num-cpus", "0.5"], serving_env, tmp_path / "up.log")
    try:
        running = up.wait_running()
        client = Client(running["url"], verbose=False)
        outputs = client.predict("Once upon a time", api_name="/fanout")
        assert len(outputs) == 3
        for ref, out in zip(refs, outputs, strict=True):
            assert out["label"].startswith(ref), out["label"]  # slot order = output order
            assert re.search(r"· \d+\.\d\d s$", out["label"]), "each answer carries its latency"
            assert out["value"].strip()

        # The plain Gradio REST/SSE API gives the same shape.
        call = httpx.post(f"{running['url']}gradio_api/call/fanout", json={"data": ["Hello there"]}, timeout=30)
        assert call.status_code == 200, call.text
        event_id = call.json()["event_id"]
        stream = httpx.get(f"{running['url']}gradio_api/call/fanout/{event_id}", timeout=120).text
        data = json.loads(stream.split("event: complete\ndata:", 1)[1].strip().splitlines()[0])
        assert [d["label"].split(" · ")[0] for d in data] == refs

        deployments = next(e for e in reversed(up.events) if e["event"] == "status")["deployments"]
        slots = sorted((d["name"], d["model"]) for d in deployments if d["name"].startswith("model"))
        assert slots == [(f"model{i}", ref) for i, ref in enumerate(refs)]
    finally:
        up.stop()
    assert up.events[-1]["phase"] == "stopped"
    assert_all_gone(up, port)


def test_embedded_fanout_runs_models_concurrently(serving_env, tmp_path):
    """The default fan-out (the embedded model twice) answers offline, and the wall time
    of one fan-out stays well under the sum of the two models' own times."""
    port = free_port()
    up = Up(["--mode", "fanout", "--port", str(port)], serving_env, tmp_path / "up.log")
    try:
        running = up.wait_running(timeout=420)
        client = Client(running["url"], verbose=False)
        client.predict("Say hello.", api_name="/fanout")  # warm-up
        start = time.perf_counter()
        outputs = client.predict("Name three colours of the rainbow.", api_name="/fanout")
        wall = time.perf_counter() - start
        latencies = [float(re.search(r"(\d+\.\d+) s$", o["label"]).group(1)) for o in outputs]
        assert all(o["value"].strip() for o in outputs)
        assert [o["label"].split(" · ")[0] for o in outputs] == ["precise", "creative"]
        assert wall < 0.8 * sum(latencies), (wall, latencies)

        # The page's endpoint streams: partial answers arrive before the final ones.
        job = client.submit("Describe the sea in two sentences.", api_name="/fanout_stream")
        job.result(timeout=300)
        updates = job.outputs()
        assert any("generating…" in box["label"] for out in updates[:-1] for box in out), updates[:2]
        assert all(re.search(r"\d+\.\d\d s$", box["label"]) for box in updates[-1])
    finally:
        up.stop()
    assert_all_gone(up, port)


def test_stop_while_starting_then_start_again_on_the_same_port(tiny_models, serving_env, tmp_path):
    port = free_port()
    args = ["--model", tiny_models["seq2seq"], "--port", str(port)]
    first = Up(args, serving_env, tmp_path / "first.log")
    try:
        first.wait_phase("deploying", "error")
    finally:
        first.stop()
    assert first.proc.returncode == 0
    assert first.events[-1]["phase"] == "stopped"
    assert not any(e["phase"] == "running" for e in first.events if e["event"] == "phase")
    assert_all_gone(first, port)

    again = Up(args, serving_env, tmp_path / "again.log")
    try:
        running = again.wait_running()
        assert Client(running["url"], verbose=False).predict(ARTICLE, api_name="/summarize").strip()
    finally:
        again.stop()
    assert_all_gone(again, port)
