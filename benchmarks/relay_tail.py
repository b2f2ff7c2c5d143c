"""The app's port under many sessions: a user's app with 2 replicas, 200 concurrent sessions, each
calling an endpoint that returns at once through Gradio's REST recipe (POST call/<api>, then GET its
stream), with a pause of its own before each call. p50 and p99 through the app's port (our relay)
against the same sessions, on the same schedule, sent straight to the replicas' own ports, half to
each (as the relay spreads them); two rounds of each, in the order A B B A (the path that runs later
meets replicas that have served longer: with one round each, the second path's p99 was 15-70 % worse
whichever it was). Also the relay's memory per idle keep-alive connection. ~3 minutes (each round ~40 s: 2 calls, a pause of 0-20 s before each).

The pauses keep the machine below saturation (2 busy cores do ~33 such calls/s in all): a
saturated run measures Gradio's queue, whose wait swamps the path's.
"""

from __future__ import annotations

import asyncio
import random
import time

import httpx
import psutil

from benchmarks.common import ROOT, Up, free_port, log, percentile

APP = ROOT / "benchmarks" / "byo_app.py"


async def _session(base: str, calls: int, pause_s: float, seed: int, out: list[float], errors: list[str]) -> None:
    pauses = random.Random(seed)  # the same schedule on both paths
    async with httpx.AsyncClient(base_url=base, timeout=120, trust_env=False) as client:
        for i in range(calls):
            await asyncio.sleep(pauses.uniform(0, 2 * pause_s))
            t0 = time.perf_counter()
            try:
                r = await client.post("/gradio_api/call/echo", json={"data": [f"hello {i}"]})
                r.raise_for_status()
                event = r.json()["event_id"]
                body = (await client.get(f"/gradio_api/call/echo/{event}")).text
                if "event: complete" not in body:
                    raise RuntimeError(body[-200:])
            except Exception as exc:  # noqa: BLE001 - counted, reported
                errors.append(f"{type(exc).__name__}: {exc}"[:200])
                continue
            out.append(time.perf_counter() - t0)


async def _round(bases: list[str], sessions: int, calls: int, pause_s: float) -> tuple[list[float], list[str]]:
    lat: list[float] = []
    errors: list[str] = []
    await asyncio.gather(*(_session(bases[i % len(bases)], calls, pause_s, i, lat, errors) for i in range(sessions)))
    return lat, errors


def replica_ports(up: Up) -> list[int]:
    """Each app replica's own HTTP port (Serve's direct ingress): the one of its listening ports that
    answers Gradio's info route."""
    ports = []
    for pid in up.replica_pids("app"):
        for conn in psutil.Process(pid).net_connections("tcp"):
            if conn.status != psutil.CONN_LISTEN:
                continue
            try:
                ok = httpx.get(f"http://127.0.0.1:{conn.laddr.port}/gradio_api/info", timeout=2,
                               trust_env=False).status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                ports.append(conn.laddr.port)
                break
    return ports


def _listener(port: int) -> psutil.Process:
    for conn in psutil.net_connections("tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            return psutil.Process(conn.pid)
    raise RuntimeError(f"nothing listens on {port}")


async def _idle_connections(base: str, n: int) -> list[httpx.AsyncClient]:
    clients = [httpx.AsyncClient(base_url=base, timeout=30, trust_env=False) for _ in range(n)]
    await asyncio.gather(*(c.get("/gradio_api/info") for c in clients))
    return clients


def _memory_per_idle_connection(port: int, n: int) -> float:
    """KB of the relay's RSS per idle keep-alive connection (each made one request first)."""
    relay = _listener(port)

    async def run() -> float:
        before = relay.memory_info().rss
        clients = await _idle_connections(f"http://127.0.0.1:{port}", n)
        await asyncio.sleep(2)
        after = relay.memory_info().rss
        await asyncio.gather(*(c.aclose() for c in clients))
        return (after - before) / 1024 / n

    return asyncio.run(run())


def measure(env: dict, log_path, sessions: int = 200, calls: int = 2, pause_s: float = 10,
            rounds: int = 2, first: str = "relay") -> tuple[dict, dict]:
    port = free_port()
    up = Up(["--app", str(APP), "--replicas", "2", "--num-cpus", "1", "--port", str(port)], env, log_path)
    lat: dict[str, list[float]] = {"relay": [], "direct": []}
    errors: dict[str, list[str]] = {"relay": [], "direct": []}
    try:
        up.wait_running(300)
        ports = replica_ports(up)
        if len(ports) != 2:
            raise RuntimeError(f"expected 2 replica ports, found {ports}")
        bases = {"relay": [f"http://127.0.0.1:{port}"], "direct": [f"http://127.0.0.1:{p}" for p in ports]}
        asyncio.run(_round(bases["relay"], 20, 2, 0))  # warm both paths
        asyncio.run(_round(bases["direct"], 20, 2, 0))
        for r in range(rounds):
            order = ["relay", "direct"] if first == "relay" else ["direct", "relay"]
            for who in (order if r % 2 == 0 else order[::-1]):
                got, errs = asyncio.run(_round(bases[who], sessions, calls, pause_s))
                lat[who] += got
                errors[who] += errs
                log(f"relay tail round {r + 1} {who}: p50 {percentile(got, 0.5) * 1000:.0f} ms, "
                    f"p99 {percentile(got, 0.99) * 1000:.0f} ms, {len(errs)} errors")
        kb = _memory_per_idle_connection(port, sessions)
    finally:
        up.stop()
    p = {k: (percentile(v, 0.5), percentile(v, 0.99)) for k, v in lat.items()}
    results = {"relay_p99_vs_direct_ratio": round(p["relay"][1] / p["direct"][1], 3)}
    details = {
        "setup": f"`gradio-serve up --app benchmarks/byo_app.py --replicas 2 --num-cpus 1`; {sessions} concurrent "
                 f"sessions (httpx, a cookie jar and connection each) x {calls} calls of /echo by Gradio's REST "
                 f"recipe (POST call/echo, GET its stream), each after a pause of 0-{2 * pause_s:g} s (~"
                 f"{sessions / pause_s:.0f} calls/s in all); {rounds} round(s) per path, interleaved, {first} first; direct: the "
                 "same sessions to the two replicas' own ports, half each",
        "relay_p50_ms": round(p["relay"][0] * 1000, 1), "relay_p99_ms": round(p["relay"][1] * 1000, 1),
        "direct_p50_ms": round(p["direct"][0] * 1000, 1), "direct_p99_ms": round(p["direct"][1] * 1000, 1),
        "p50_ratio": round(p["relay"][0] / p["direct"][0], 3),
        "calls": {k: len(v) for k, v in lat.items()}, "errors": {k: len(v) for k, v in errors.items()},
        "first_error": next((e[0] for e in errors.values() if e), None),
        "relay_kb_per_idle_connection": round(kb, 1),
    }
    if any(errors.values()):
        raise RuntimeError(f"calls failed: {details['errors']}, first: {details['first_error']}")
    return results, details
