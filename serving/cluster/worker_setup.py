"""What every worker of a local cluster we start runs first (Ray's worker setup hook).

Set with `run_in_every_worker(HOOK)` (serving/ray_private/) before ray.init; Ray calls it in each
worker before the worker takes its first actor (Serve's controller, proxy or a replica).
"""

from __future__ import annotations

HOOK = "serving.cluster.worker_setup.setup"


def setup() -> None:
    from serving.cluster.loopback import worker_setup
    from serving.ray_private import import_serve_without_pandas

    import_serve_without_pandas()  # ~33 MB less in each of Serve's processes
    worker_setup()  # Serve's gRPC servers on 127.0.0.1
