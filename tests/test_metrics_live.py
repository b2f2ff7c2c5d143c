"""What the app is doing, live (#22 item 2), with a real cluster: load it with requests, and the figures
that `gradio-serve status --json` shows (from Ray's own metrics, serving/cluster/metrics_reader.py) move:
requests per second, plausible latencies, errors counted when an endpoint raises, each replica's CPU and
memory; for a model, tokens per second and the batch in use."""

from __future__ import annotations

import concurrent.futures as cf
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gradio_client import Client
from supervisor_run import Up, free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "tests" / "apps" / "text_interface.py"


def status_json(env) -> dict:
    done = subprocess.run([sys.executable, "-m", "serving.cli", "status", "--json"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def figures_until(env, deployment: str, ok, timeout: float = 60) -> dict:
    """The deployment's figures in `status --json` once ok(figures) holds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        metrics = status_json(env).get("metrics") or {}
        last = next((d for d in metrics.get("deployments", []) if d["name"] == deployment), None)
        if last and ok(last):
            return last
        time.sleep(1)
    raise AssertionError(f"the figures of {deployment} never got there: {last}")


def test_the_app_s_figures_move_under_load(serving_env, tmp_path):
    port = free_port()
    up = Up(["--app", str(APP), "--port", str(port), "--replicas", "2"], serving_env, tmp_path / "up.log")
    try:
        url = up.wait_running()["url"]
        stop = time.monotonic() + 12

        def load() -> int:
            client, n = Client(url, verbose=False), 0
            while time.monotonic() < stop:
                assert client.predict("Hello World", "-", api_name="/slugify") == "hello-world"
                n += 1
            return n

        with cf.ThreadPoolExecutor(3) as pool:
            sent = sum(f.result() for f in [pool.submit(load) for _ in range(3)])
        failing = Client(url, verbose=False)
        for _ in range(3):
            with pytest.raises(Exception, match="Nothing to slugify"):
                failing.predict("", "-", api_name="/slugify")
        assert sent > 10

        app = figures_until(serving_env, "app", lambda d: d["requests_per_s"] > 0 and d["errors"] >= 3)
        assert app["replicas"] == 2
        assert app["p50_ms"] is not None and 0 < app["p50_ms"] < 10_000, app
        assert app["p95_ms"] >= app["p50_ms"], app
        assert len(app["processes"]) == 2
        assert all(p["memory_bytes"] > 50e6 and p["cpu_percent"] >= 0 for p in app["processes"]), app
        # The same figures as events, for the launcher.
        events = [e for e in up.events if e["event"] == "metrics"]
        assert events and any(d["requests_per_s"] > 0 for e in events for d in e["deployments"])
        print("figures:", json.dumps(app), "read_ms:", [e.get("read_ms") for e in events[-5:]])
    finally:
        up.stop()


def test_a_model_s_tokens_per_second_and_batch(tiny_models, serving_env, tmp_path):
    port = free_port()
    up = Up(["--model", tiny_models["instruct"], "--port", str(port)], serving_env, tmp_path / "up.log")
    try:
        url = up.wait_running()["url"]
        stop = time.monotonic() + 10

        def load() -> None:
            client = Client(url, verbose=False)
            while time.monotonic() < stop:
                client.predict("The sea is wide and deep. " * 5, api_name="/summarize")

        with cf.ThreadPoolExecutor(4) as pool:
            for f in [pool.submit(load) for _ in range(4)]:
                f.result()
        model = figures_until(serving_env, "model0", lambda d: (d["tokens_per_s"] or 0) > 0)
        assert model["requests_per_s"] > 0 and model["batch_size"] is not None, model
        assert model["replicas"] == 1 and model["processes"], model
        print("figures:", json.dumps(model))
    finally:
        up.stop()
