"""Client-side measurements with gradio_client: sequential latency and concurrent throughput."""

from __future__ import annotations

import threading
import time

from benchmarks.common import gclient, percentile


def latencies(url: str, api_name: str, payload: str, n: int, warmup: int = 1) -> list[float]:
    client = gclient(url)
    for _ in range(warmup):
        client.predict(payload, api_name=api_name)
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        client.predict(payload, api_name=api_name)
        out.append(time.perf_counter() - t0)
    return out


def interleaved(urls: dict[str, str], api_name: str, payload: str, n: int, warmup: int = 3) -> dict[str, list[float]]:
    """Alternate calls between apps (A, B, A, B, ...) so machine noise hits both alike."""
    clients = {k: gclient(u) for k, u in urls.items()}
    for c in clients.values():
        for _ in range(warmup):
            c.predict(payload, api_name=api_name)
    out: dict[str, list[float]] = {k: [] for k in urls}
    for i in range(n):
        order = list(clients.items()) if i % 2 == 0 else list(reversed(clients.items()))
        for k, c in order:
            t0 = time.perf_counter()
            c.predict(payload, api_name=api_name)
            out[k].append(time.perf_counter() - t0)
    return out


def throughput(url: str, api_name: str, payload: str, clients: int, per_client: int, cap_s: float) -> dict:
    """`clients` threads, each with its own gradio_client Client, each sending up to `per_client`
    requests back to back; no new request after cap_s. Requests/s = completed / wall time."""
    conns = [gclient(url) for _ in range(clients)]
    barrier = threading.Barrier(clients + 1)
    lat: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = [0.0]

    def worker(c):
        barrier.wait()
        for _ in range(per_client):
            if time.perf_counter() - start[0] > cap_s:
                return
            t0 = time.perf_counter()
            try:
                c.predict(payload, api_name=api_name)
            except Exception as exc:  # noqa: BLE001 - counted, reported
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
                continue
            with lock:
                lat.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=worker, args=(c,), daemon=True) for c in conns]
    for t in threads:
        t.start()
    start[0] = time.perf_counter()
    barrier.wait()
    for t in threads:
        t.join(timeout=cap_s + 300)
    wall = time.perf_counter() - start[0]
    return {
        "completed": len(lat), "errors": len(errors), "first_error": errors[0] if errors else None,
        "wall_s": round(wall, 2), "rps": round(len(lat) / wall, 3) if wall else 0.0,
        "latency_p50_s": round(percentile(lat, 0.5), 3), "latency_p95_s": round(percentile(lat, 0.95), 3),
    }
