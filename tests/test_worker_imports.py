"""Serve's processes in a cluster we start carry no pandas (serving/worker_setup.py: ~33 MB each):
only the Gradio ingress loads it, because Gradio needs it. A real `gradio-serve up`, its processes
read from /proc."""

from __future__ import annotations

import httpx
import psutil
import pytest
from supervisor_run import Up, free_port
from test_security import app_processes

pytestmark = pytest.mark.slow


def maps_pandas(p: psutil.Process) -> bool:
    # pandas' compiled extensions are mapped once it is imported.
    return any("/pandas/_libs/" in m.path for m in p.memory_maps(grouped=True))


def test_only_the_gradio_ingress_loads_pandas(tiny_models, serving_env, tmp_path):
    port = free_port()
    up = Up(["--model", tiny_models["seq2seq"], "--port", str(port)], serving_env, tmp_path / "up.log")
    try:
        base = up.wait_running()["url"]
        post = httpx.post(f"{base}gradio_api/call/summarize", json={"data": ["Warm every replica up."]}, timeout=30)
        assert post.status_code == 200
        httpx.get(f"{base}gradio_api/call/summarize/{post.json()['event_id']}", timeout=120)
        loaded = {}
        for p in app_processes(up).values():
            try:
                title = " ".join(p.cmdline())
                if title.startswith("ray::") or "serving.cli" in title:
                    loaded[title.split()[0] if title.startswith("ray::") else "supervisor"] = maps_pandas(p)
            except psutil.Error:
                continue
        ingress = [k for k in loaded if k.endswith(":GradioIngress")]
        assert ingress and all(loaded[k] for k in ingress), loaded  # Gradio imports pandas: the check sees it
        for name in ("supervisor", "ray::ServeController", "ray::ProxyActor", "ray::ServeReplica:gradio-serve:model0"):
            found = [k for k in loaded if k.startswith(name)]  # a title may go on: ray::ServeController.run...
            assert found, loaded
            assert not any(loaded[k] for k in found), f"{name} loads pandas: {loaded}"
    finally:
        up.stop()
