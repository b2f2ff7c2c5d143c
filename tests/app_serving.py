"""Serving the example apps of tests/apps with `gradio-serve up --app`, and using them.

- `serve_app(target, replicas, env, log_dir)`: one supervisor (tests/supervisor_run.Up) serving
  tests/apps/<target>; returns when the app answers, with its URL.
- `client(url)`: a gradio_client session (it keeps the sticky-session cookie of its first answer).
- `in_sessions(n, check, url)`: runs `check(url)` in n concurrent sessions, re-raising the first failure.
- `answer_within(job, seconds)`: a job's result, or TimeoutError instead of a hang.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from gradio_client import Client
from supervisor_run import ROOT, Up, free_port

APPS = ROOT / "tests" / "apps"
# Two replicas share this 2-core machine.
CPUS_PER_REPLICA = {1: "1", 2: "0.5"}


@dataclass
class Served:
    target: str
    replicas: int
    up: Up
    url: str

    def pids(self) -> list[int]:
        return self.up.replica_pids("app")


@contextlib.contextmanager
def plain_gradio(name: str, log_dir: Path):
    """`python tests/apps/NAME`, as its author runs it (port from PORT); yields its URL once it answers."""
    port = free_port()
    log = open(log_dir / "plain.log", "w")  # noqa: SIM115 - closed below
    env = {**os.environ, "PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen([sys.executable, str(APPS / name)], env=env, cwd=APPS, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, Path(log.name).read_text()[-3000:]
            try:
                httpx.get(url, timeout=2, trust_env=False)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, f"python {name} did not answer"
                time.sleep(0.3)
        yield url
    finally:
        proc.kill()
        proc.wait()
        log.close()


def serve_app(target: str, replicas: int, env: dict, log_dir: Path, timeout: float = 240) -> Served:
    """`gradio-serve up --app tests/apps/<target> --replicas N`, as a user types it (relative path)."""
    path = f"tests/apps/{target}"
    assert (ROOT / path.split(":")[0]).is_file(), path
    args = ["--app", path, "--replicas", str(replicas), "--num-cpus", CPUS_PER_REPLICA[replicas],
            "--port", str(free_port())]
    log_dir.mkdir(parents=True, exist_ok=True)
    up = Up(args, env, log_dir / f"up-{target.replace('/', '_').replace(':', '_')}-{replicas}.log")
    try:
        running = up.wait_running(timeout=timeout)
    except BaseException:
        up.stop()
        raise
    return Served(target, replicas, up, running["url"])


def client(url: str) -> Client:
    return Client(url, verbose=False)


def in_sessions(n: int, check, url: str) -> list:
    """check(url) in n concurrent threads (each makes its own sessions); their results in order."""
    with cf.ThreadPoolExecutor(n) as pool:
        return [f.result(timeout=180) for f in [pool.submit(check, url) for _ in range(n)]]


def answer_within(job, seconds: float):
    """The job's final result; TimeoutError (not a hang) when none comes within `seconds`."""
    return job.result(timeout=seconds)


def rest_call(url: str, api: str, data: list, timeout: float = 30) -> list:
    """One call over Gradio's REST API as curl makes it: POST, then GET the result; no cookies kept."""
    import json

    import httpx

    posted = httpx.post(f"{url}gradio_api/call/{api}", json={"data": data}, timeout=timeout)
    assert posted.status_code == 200, (posted.status_code, posted.text)
    stream = httpx.get(f"{url}gradio_api/call/{api}/{posted.json()['event_id']}", timeout=timeout).text
    assert "event: complete" in stream, stream
    return json.loads(stream.split("event: complete\ndata:", 1)[1].strip().splitlines()[0])
