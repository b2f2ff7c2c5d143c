"""`from serving import GradioServer, GradioIngress`: Ray's Gradio integration, working on Gradio 6.

- Ports of Ray's own tests of `ray.serve.gradio_integrations` (a builder, a user-defined subclass,
  two replicas reached by stateless REST calls), against our drop-in.
- The two examples of Ray's guide "Scale a Gradio App with Ray Serve" with only the import changed
  (and tiny local models), deployed with `serve run FILE:app` as the guide does.

Everything runs on one real Ray cluster started with `ray start` (tests/ray_cluster.py), with
Serve's proxy on a port of our own (`serve start --http-port`). The guide's quickstart asks for
4 CPUs per replica, so the head node has 4 (logical) CPUs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from gradio_client import Client
from ray_cluster import RayCluster
from supervisor_run import ROOT, free_port

pytestmark = pytest.mark.slow

GUIDE = ROOT / "tests" / "guide"
# Serve's shutdown on Ctrl-C: its controller waits up to 30 s, each replica up to 20 s; a slow machine more.
SHUTDOWN_S = 120
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def cluster(tiny_models):
    # After tiny_models: the cluster's workers find the tiny models offline too.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    c = RayCluster(env, head_cpus=4, worker_cpus=1)
    try:
        c.start()
        c.http_port = free_port()
        yield c
    finally:
        c.stop()


class ServeRun:
    """`serve run FILE:APP` in the foreground, as the guide does; Ctrl-C (SIGINT) shuts Serve down."""

    def __init__(self, cluster: RayCluster, import_path: str, log: Path):
        # Serve's proxy on our port (serve run would take 8000), started again after each Ctrl-C.
        started = subprocess.run([str(BIN / "serve"), "start", "--address", cluster.address, "--http-host",
                                  "127.0.0.1", "--http-port", str(cluster.http_port)], check=False, env=cluster.env,
                                 capture_output=True, text=True, timeout=120)
        assert started.returncode == 0, started.stderr[-2000:]
        self.cluster, self.log = cluster, open(log, "w")  # noqa: SIM115 - closed in stop()
        self.url = f"http://127.0.0.1:{cluster.http_port}/"
        self.proc = subprocess.Popen(
            [str(BIN / "serve"), "run", "--address", cluster.address, "--working-dir", str(GUIDE), import_path],
            env=cluster.env, cwd=GUIDE, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def wait_page(self, timeout: float = 240) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"serve run exited {self.proc.returncode}: {Path(self.log.name).read_text()[-3000:]}"
            try:
                resp = httpx.get(self.url, timeout=5, trust_env=False)
                # serve run says so once every replica runs
                if resp.status_code == 200 and "is ready at" in Path(self.log.name).read_text():
                    assert "gradio" in resp.text.lower(), resp.text[:500]
                    return resp.text
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise AssertionError(f"no page at {self.url} in {timeout} s: {Path(self.log.name).read_text()[-3000:]}")

    def stop(self) -> None:
        """Ctrl-C, as a user stops `serve run`: it shuts Serve down, and the app stops answering.

        Serve's own shutdown is bounded, not instant: its controller waits up to 30 s for the
        replicas (each up to its graceful_shutdown_timeout_s, 20 s, while a client still holds a
        stream open), and a slow machine takes longer still; the waits below allow for that. Whatever
        happens, Serve is shut down before the next test, so one slow stop cannot fail the others."""
        try:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGINT)
                try:
                    self.proc.wait(timeout=SHUTDOWN_S)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait()
                    raise AssertionError(f"serve run did not exit within {SHUTDOWN_S} s of Ctrl-C: "
                                         f"{Path(self.log.name).read_text()[-3000:]}") from None
            # The app is gone from the proxy: nothing of it keeps answering.
            deadline = time.monotonic() + SHUTDOWN_S
            while time.monotonic() < deadline:
                try:
                    if httpx.get(self.url, timeout=5, trust_env=False).status_code == 404:
                        return
                except httpx.HTTPError:
                    return
                time.sleep(0.5)
            raise AssertionError(f"the app still answers {SHUTDOWN_S} s after serve run was stopped: "
                                 f"{Path(self.log.name).read_text()[-3000:]}")
        finally:
            self.log.close()
            # Serve gone for the next test, whatever happened above (a no-op when Ctrl-C did it).
            subprocess.run([str(BIN / "serve"), "shutdown", "--address", self.cluster.dashboard, "-y"], check=False,
                           env=self.cluster.env, capture_output=True, timeout=180)


@pytest.fixture
def serve_run(cluster, tmp_path):
    runs: list[ServeRun] = []

    def start(import_path: str) -> ServeRun:
        run = ServeRun(cluster, import_path, tmp_path / f"serve-run-{len(runs)}.log")
        runs.append(run)
        run.wait_page()
        return run

    yield start
    for run in runs:
        run.stop()


def test_builder(serve_run):
    """Ray's test_gradio_ingress_correctness, with GradioServer.bind(builder)."""
    run = serve_run("ray_gradio_tests:builder_app")
    resp = httpx.post(run.url + "gradio_api/run/greet", json={"data": ["Alice"]}, timeout=60, trust_env=False)
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"] == ["Good morning Alice!"]
    assert Client(run.url, verbose=False).predict("Bob", api_name="/greet") == "Good morning Bob!"


def test_user_defined_subclass(serve_run):
    """Ray's test_gradio_ingress_correctness with a user-defined `@serve.deployment class ...(GradioIngress)`."""
    run = serve_run("ray_gradio_tests:subclass_app")
    resp = httpx.post(run.url + "gradio_api/run/greet", json={"data": ["Alice"]}, timeout=60, trust_env=False)
    assert resp.status_code == 200 and resp.json()["data"] == ["Good morning Alice!"], resp.text


def test_two_replicas_both_reached_by_stateless_rest_calls(serve_run):
    """Ray's test_gradio_ingress_scaling: separate REST requests are served by different replicas."""
    run = serve_run("ray_gradio_tests:scaled_app")
    pids = []
    for _ in range(4):
        resp = httpx.post(run.url + "gradio_api/run/pid", json={"data": ["input"]}, timeout=60, trust_env=False)
        assert resp.status_code == 200, resp.text
        pids.append(resp.json()["data"][0])
    assert len(set(pids)) == 2, pids
    # The two-step REST API (POST, then GET the result by event id) finds its replica without cookies.
    for _ in range(4):
        posted = httpx.post(run.url + "gradio_api/call/pid", json={"data": ["x"]}, timeout=60, trust_env=False)
        assert posted.status_code == 200, posted.text
        event_id = posted.json()["event_id"]
        result = httpx.get(run.url + f"gradio_api/call/pid/{event_id}", timeout=60, trust_env=False)
        assert result.status_code == 200 and "event: complete" in result.text, result.text


def test_guide_quickstart_with_only_the_import_changed(serve_run):
    run = serve_run("demo:app")
    client = Client(run.url, verbose=False)
    answer = client.predict("The moon landing", api_name="/model")
    assert answer.startswith("The moon landing") and len(answer) > len("The moon landing"), answer


def test_guide_parallel_example_with_only_the_import_changed(serve_run):
    run = serve_run("demo_parallel:app")
    answer = Client(run.url, verbose=False).predict("My name is Lewis", api_name="/fanout")
    first, _, second = answer.partition("\n\n[Generated text version 2]\n")
    assert first.startswith("[Generated text version 1]\nMy name is Lewis"), answer
    assert second.startswith("My name is Lewis"), answer
