"""Serve's processes in a cluster we start carry no pandas (serving/cluster/worker_setup.py: ~33 MB each):
only the Gradio ingress loads it, because Gradio needs it. A real `gradio-serve up`, its processes
read from /proc."""

from __future__ import annotations

import httpx
import psutil
import pytest
from supervisor_run import Up, free_port

from benchmarks.common import app_processes, process_role

pytestmark = pytest.mark.slow


def maps_pandas(p: psutil.Process) -> bool | None:
    """Whether pandas' compiled extensions are mapped (they are once it is imported); None: gone."""
    try:
        return any("/pandas/_libs/" in m.path for m in p.memory_maps(grouped=True))
    except psutil.Error:
        return None


def test_only_the_gradio_ingress_loads_pandas(tiny_models, serving_env, tmp_path):
    port = free_port()
    up = Up(["--model", tiny_models["seq2seq"], "--port", str(port)], serving_env, tmp_path / "up.log")
    try:
        base = up.wait_running()["url"]
        post = httpx.post(f"{base}gradio_api/call/summarize", json={"data": ["Warm every replica up."]}, timeout=30)
        assert post.status_code == 200
        httpx.get(f"{base}gradio_api/call/summarize/{post.json()['event_id']}", timeout=120)
        loaded = {process_role(p): maps_pandas(p) for p in app_processes(up.proc.pid)}
        loaded = {role: maps for role, maps in loaded.items() if maps is not None}
        ingress = [k for k in loaded if k.endswith(":GradioIngress")]
        assert ingress and all(loaded[k] for k in ingress), loaded  # Gradio imports pandas: the check sees it
        for name in ("supervisor", "ServeController", "ProxyActor", "ServeReplica:gradio-serve:model0"):
            found = [k for k in loaded if k.startswith(name)]  # a title may go on: ServeController.run...
            assert found, loaded
            assert not any(loaded[k] for k in found), f"{name} loads pandas: {loaded}"
    finally:
        up.stop()
