"""A bounded load test on loopback: 200 requests from 16 concurrent clients, zero failures.

The tiny T5 runs as 2 replicas with max_ongoing_requests=2, so at most 4 prompts are inside
the model at once while 16 clients push: Serve must queue the rest, never fail them.
p50/p95 latency and throughput are printed and written to test-artifacts/load.json.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from supervisor_run import ROOT, Up, free_port

pytestmark = pytest.mark.slow

REQUESTS = 200
CLIENTS = 16
REPLICAS = 2
MAX_ONGOING = 2
REQUEST_TIMEOUT = httpx.Timeout(120.0, connect=10.0)
ARTIFACTS = ROOT / "test-artifacts"


def one_request(base: str, i: int) -> tuple[float, str | None]:
    """One prompt over the REST/SSE API; (seconds, None) or (seconds, what went wrong)."""
    text = f"Request {i}: the quick brown fox jumps over the lazy dog near the river bank."
    start = time.perf_counter()
    try:
        with httpx.Client(base_url=base, timeout=REQUEST_TIMEOUT) as client:
            post = client.post("gradio_api/call/summarize", json={"data": [text]})
            if post.status_code != 200:
                return time.perf_counter() - start, f"POST {post.status_code}: {post.text[:200]}"
            event_id = post.json()["event_id"]
            kind = data = None
            with client.stream("GET", f"gradio_api/call/summarize/{event_id}") as resp:
                for line in resp.iter_lines():
                    if line.startswith("event: "):
                        kind = line[7:].strip()
                    elif line.startswith("data: ") and kind in ("complete", "error"):
                        data = line[6:]
                        break
        elapsed = time.perf_counter() - start
        if kind != "complete":
            return elapsed, f"{kind}: {str(data)[:200]}"
        (answer,) = json.loads(data)
        if not answer.strip() or answer.startswith("⚠"):
            return elapsed, f"bad answer: {answer[:200]}"
        return elapsed, None
    except Exception as exc:  # noqa: BLE001 - counted as a failure
        return time.perf_counter() - start, f"{type(exc).__name__}: {exc}"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def test_200_requests_16_clients_none_fail(tiny_models, serving_env, tmp_path):
    port = free_port()
    config = {
        "mode": "summarize",
        "models": [{"model": tiny_models["seq2seq"], "num_cpus": 0.5, "replicas": REPLICAS,
                    "max_ongoing_requests": MAX_ONGOING}],
        "http": {"host": "127.0.0.1", "port": port},
    }
    config_path = tmp_path / "load.json"
    config_path.write_text(json.dumps(config))
    up = Up(["--config", str(config_path)], serving_env, tmp_path / "up.log")
    try:
        running = up.wait_running()
        base = running["url"]
        assert base.startswith("http://127.0.0.1:")
        status = next(e for e in reversed(up.events) if e["event"] == "status")
        model = next(d for d in status["deployments"] if d["name"] == "model0")
        assert model["replicas_running"] == REPLICAS, model

        assert one_request(base, -1)[1] is None  # warm-up, not counted
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            results = list(pool.map(lambda i: one_request(base, i), range(REQUESTS)))
        wall = time.perf_counter() - start
    finally:
        up.stop()

    latencies = [t for t, _ in results]
    failures = [err for _, err in results if err]
    report = {
        "requests": REQUESTS, "clients": CLIENTS, "replicas": REPLICAS, "max_ongoing_requests": MAX_ONGOING,
        "model": tiny_models["seq2seq"], "failed": len(failures), "wall_s": round(wall, 2),
        "throughput_rps": round(REQUESTS / wall, 2),
        "latency_p50_s": round(percentile(latencies, 0.50), 3),
        "latency_p95_s": round(percentile(latencies, 0.95), 3),
        "latency_max_s": round(max(latencies), 3),
        "latency_mean_s": round(statistics.mean(latencies), 3),
        "cpus": os.cpu_count(),
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "load.json").write_text(json.dumps(report, indent=2))
    print("\nload:", json.dumps(report))
    assert not failures, f"{len(failures)} of {REQUESTS} failed, e.g. {failures[:3]}"
    assert len(results) == REQUESTS
