"""`gradio-serve apply`: change the running app in place, on the real cluster.

A model swap reuses the running replica processes (Serve's reconfigure, not a restart);
a change that cannot work is refused, or rolled back, and the old app keeps answering.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from gradio_client import Client
from supervisor_run import ROOT, Up, free_port

pytestmark = pytest.mark.slow

ARTICLE = "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France."


def apply(env, *args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "serving.cli", "apply", *args], cwd=ROOT, env=env,
                          check=False, capture_output=True, text=True, timeout=timeout)


def last_status(up: Up) -> dict:
    return next(e for e in reversed(up.events) if e["event"] == "status")


def applied_events(up: Up) -> list[dict]:
    return [e for e in up.events if e["event"] == "applied"]


def broken_copy(snapshot: str, dest: Path) -> Path:
    """The tiny T5 with its weights replaced by junk: it resolves (config.json is fine) but cannot load."""
    shutil.copytree(snapshot, dest, symlinks=False)
    for weights in dest.glob("*.safetensors"):
        weights.unlink()
        weights.write_bytes(b"not a safetensors file")
    return dest


def test_apply_swaps_the_model_in_place_and_refuses_what_needs_a_restart(tiny_models, serving_env, tmp_path):
    port = free_port()
    up = Up(["--model", tiny_models["seq2seq"], "--port", str(port)], serving_env, tmp_path / "up.log")
    try:
        running = up.wait_running()
        url = running["url"]
        assert Client(url, verbose=False).predict(ARTICLE, api_name="/summarize").strip()
        model_pids, ingress_pids = up.replica_pids("model0"), up.replica_pids("GradioIngress")
        assert len(model_pids) == 1 and len(ingress_pids) == 1

        done = apply(serving_env, "--model", tiny_models["instruct"])
        assert done.returncode == 0, done.stderr
        assert "Done in" in done.stdout
        assert applied_events(up)[-1]["ok"] is True
        model = next(d for d in last_status(up)["deployments"] if d["name"] == "model0")
        assert model["model"] == tiny_models["instruct"]
        # The same processes: Serve reconfigured them (torch and Gradio stay loaded).
        assert up.replica_pids("model0") == model_pids
        assert up.replica_pids("GradioIngress") == ingress_pids
        answer = Client(url, verbose=False).predict(ARTICLE, api_name="/summarize")
        assert answer.strip() and not answer.startswith("⚠")
        status = subprocess.run([sys.executable, "-m", "serving.cli", "status", "--json"], cwd=ROOT,
                                env=serving_env, capture_output=True, text=True, check=True)
        assert tiny_models["instruct"] in status.stdout  # the record holds the new config

        # Refused before anything changes, with what to do.
        unknown = apply(serving_env, "--model", "no-such/model-xyz")
        assert unknown.returncode == 2 and "unknown model 'no-such/model-xyz'" in unknown.stderr
        port_change = apply(serving_env, "--port", str(free_port()))
        assert port_change.returncode == 2 and "needs a restart" in port_change.stderr
        too_big = apply(serving_env, "--num-cpus", "64")
        assert too_big.returncode == 2 and "CPUs" in too_big.stderr
        assert up.replica_pids("model0") == model_pids

        # More replicas: a lightweight change too; the first replica stays.
        more = apply(serving_env, "--replicas", "2", "--num-cpus", "0.5")
        assert more.returncode == 0, more.stderr
        model = next(d for d in last_status(up)["deployments"] if d["name"] == "model0")
        assert (model["replicas_running"], model["replicas_target"]) == (2, 2), model
        assert Client(url, verbose=False).predict(ARTICLE, api_name="/summarize").strip()
    finally:
        up.stop()
    assert up.proc.returncode == 0
    assert up.events[-1]["phase"] == "stopped"


def test_a_change_that_fails_to_deploy_is_rolled_back(tiny_models, serving_env, tmp_path):
    port = free_port()
    up = Up(["--model", tiny_models["seq2seq"], "--port", str(port)], serving_env, tmp_path / "up.log")
    repo = Path(tiny_models["hub_cache"]) / ("models--" + tiny_models["seq2seq"].replace("/", "--"))
    broken = broken_copy(next((repo / "snapshots").iterdir()), tmp_path / "broken-t5")
    try:
        running = up.wait_running()
        failed = apply(serving_env, "--model", str(broken), timeout=600)
        assert failed.returncode == 2, failed.stdout + failed.stderr
        assert "failed to deploy" in failed.stderr and "previous models" in failed.stderr
        # The old model is back and answers; the supervisor did not stop.
        up.wait_phase("running", timeout=300)
        assert up.proc.poll() is None
        model = next(d for d in last_status(up)["deployments"] if d["name"] == "model0")
        assert model["model"] == tiny_models["seq2seq"]
        answer = Client(running["url"], verbose=False).predict(ARTICLE, api_name="/summarize")
        assert answer.strip() and not answer.startswith("⚠")
    finally:
        up.stop()
    assert up.proc.returncode == 0
