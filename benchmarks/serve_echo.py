"""A Serve app whose model answers at once: the same ingress (serving.replica.apps.GradioIngress, which
builds serving.replica.ui.build_blocks inside the replica) in front of an echo deployment. Isolates what
Serve adds (proxy + ingress + handle call) for proxy_overhead_ms_p50.

    python -m benchmarks.serve_echo PORT     # prints READY, serves until stdin closes
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import ray
from ray import serve


@serve.deployment(max_ongoing_requests=256, ray_actor_options={"num_cpus": 0})
class Echo:
    async def generate(self, text: str, slot: int | None = None) -> dict:
        return {"text": text, "latency_s": 0.0, "truncated_to": None}

    async def stream(self, text: str, slot: int | None = None):
        yield {"text": text, "latency_s": 0.0, "truncated_to": None, "done": True}


def main() -> None:
    port = int(sys.argv[1])
    from serving.cluster.local_cluster import tune_serve_env
    from serving.core.preflight import free_loopback_port
    from serving.front.port_relay import PortRelay
    from serving.ray_private import direct_ingress_replicas, skip_unused_head_processes
    from serving.replica.apps import GradioIngress

    tune_serve_env()  # the cluster as the supervisor starts it
    skip_unused_head_processes(dashboard=False)

    # As the supervisor starts its cluster (workers at nice 0).
    ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             namespace="gsl-bench", log_to_driver=False, _system_config={"worker_niceness": 0})
    # As the supervisor serves it: the port relayed to the replica itself, Serve's proxy aside.
    relay = PortRelay("127.0.0.1", port, free_loopback_port(), "bench-echo")
    relay.start()
    serve.start(http_options={"host": "127.0.0.1", "port": relay.proxy_port})
    ingress = GradioIngress.options(ray_actor_options={"num_cpus": 0}, user_config={"labels": ["echo"]})
    app = ingress.bind("summarize", None, ["echo"], [0], Echo.bind())
    serve.run(app, name="bench-echo", route_prefix="/")
    relay.point_at(*direct_ingress_replicas("bench-echo"))
    print("READY", flush=True)
    sys.stdin.read()  # until the benchmark closes it
    relay.stop()
    serve.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main()
