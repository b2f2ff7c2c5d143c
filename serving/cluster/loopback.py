"""Keep every port of a local Ray cluster on 127.0.0.1 (measured by tests/test_security.py).

Two things opened ports to the network on Ray 2.60 even with `_node_ip_address="127.0.0.1"`:

1. Ray turns 127.0.0.1 into this machine's outward IP (services.resolve_ip_for_localhost)
   unless its local-only mode is on, so GCS, raylet, core workers, the dashboard agent
   (gRPC, HTTP, metrics) and the runtime-env agent bound to all interfaces or to that IP.
   RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 is that mode (Ray's default on macOS/Windows): the
   node IP stays 127.0.0.1 and each process binds there.
2. Each Serve replica starts an inter-deployment gRPC server on "[::]:0" (hard-coded in
   ray/serve/_private/replica.py). `worker_setup` runs in every worker of our cluster
   (serving/cluster/worker_setup.py, Ray's worker setup hook) and binds such servers to 127.0.0.1 instead,
   only while the node's own IP is loopback (then nothing else could reach them anyway).

The Ray internals both touch are in serving/ray_private/.
"""

from __future__ import annotations

import ipaddress
import os

_WILDCARDS = ("[::]:", "0.0.0.0:")


def keep_ray_on_loopback() -> None:
    """In the driver, before ray.init starts a local cluster (ray is already imported)."""
    from serving.ray_private import disable_cluster_mode

    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # for the processes Ray starts
    disable_cluster_mode()  # this driver read the variable at import already


def _node_is_loopback() -> bool:
    try:
        import ray

        return ipaddress.ip_address(ray.util.get_node_ip_address()).is_loopback
    except Exception:  # noqa: BLE001 - unknown: leave Ray's behaviour alone
        return False


def worker_setup() -> None:
    """Runs in each Ray worker: wildcard gRPC binds become 127.0.0.1 on a loopback node."""
    if not _node_is_loopback():
        return
    from serving.ray_private import wrap_grpc_port_binding

    def loopback_binding(original):
        def add_port_to_grpc_server(server, address: str):
            for wildcard in _WILDCARDS:
                if address.startswith(wildcard):
                    address = "127.0.0.1:" + address[len(wildcard):]
            return original(server, address)

        return add_port_to_grpc_server

    wrap_grpc_port_binding(loopback_binding)
