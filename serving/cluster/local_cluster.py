"""How the supervisor sets up and starts a local Ray cluster of its own, in the driver (ray.init).

Everything here reaches the cluster's processes through the environment or Ray's own start-up
(an existing cluster, `--address`, is left as it is):
- every port on 127.0.0.1 (serving/cluster/loopback.py), unless other machines may join: then
  Ray's ports are on the LAN address asked for, with a token (serving/cluster/joining.py);
- each worker's setup hook (serving/cluster/worker_setup.py): Serve without pandas, gRPC on loopback;
- no autoscaler monitor, no dashboard unless asked for, Ray's log monitor as a thread of the
  driver; ray.init finds its raylet sooner
  (serving/ray_private/);
- Serve's settings for one machine (`tune_serve_env`).
"""

from __future__ import annotations

import os
import secrets

from serving.cluster import worker_setup
from serving.core.config import APP_NAME, ClusterConfig
from serving.front.sessions import SWAP_KEY_ENV

CONTROL_LOOP_S = "0.25"
METRICS_REPORT_MS = "2000"


def start(cluster: ClusterConfig) -> None:
    """Starts the cluster of our own, in this driver (ray.init), set up as the module says."""
    import ray

    from serving.ray_private import local_cluster_init_options, monitor_worker_logs_here

    node_ip = "127.0.0.1"
    if cluster.join_address:
        from serving.cluster.joining import open_head

        node_ip = open_head(cluster.join_address)
    prepare(include_dashboard=cluster.include_dashboard, loopback=node_ip == "127.0.0.1")
    # The key a replica wants before it swaps in saved code at the supervisor's direct ask (reload on
    # save); the environment reaches our workers, and only this user can read it.
    os.environ[SWAP_KEY_ENV] = secrets.token_urlsafe(32)
    ray.init(
        # Our own cluster, always: without "local", ray.init joins RAY_ADDRESS or a cluster
        # started by `ray start` (even a dead one's leftover file) and refuses our options.
        address="local",
        num_cpus=cluster.num_cpus, num_gpus=cluster.num_gpus, namespace=APP_NAME,
        include_dashboard=cluster.include_dashboard, dashboard_host="127.0.0.1",
        # Ray runs its workers (our model replicas, the ingress, Serve's proxy) at nice 15, so
        # any other program, and Ray's own daemons, preempt the models. A model server the
        # user started should get its fair share, as the plain Gradio app would.
        **local_cluster_init_options(node_ip=node_ip, worker_niceness=0, notice_dead_nodes=bool(cluster.join_address)),
    )
    monitor_worker_logs_here()  # the replicas' output reaches this driver's stderr, without a process of its own


def prepare(include_dashboard: bool, loopback: bool = True) -> None:
    """Call once, ray imported, right before `ray.init(address="local", ...)`."""
    from serving.cluster.loopback import keep_ray_on_loopback
    from serving.ray_private import look_for_the_new_node_often, run_in_every_worker, skip_unused_head_processes

    if loopback:
        keep_ray_on_loopback()  # every Ray port on 127.0.0.1
    run_in_every_worker(worker_setup.HOOK)
    skip_unused_head_processes(dashboard=include_dashboard)
    look_for_the_new_node_often()
    tune_serve_env()


def tune_serve_env() -> None:
    """Serve's settings for a cluster we start, inherited by its controller, proxy and replicas through
    the environment; a user's own setting wins."""
    # Serve's controller reconciles 10 times a second (3% of a core here, taken from the replicas
    # under load); four times a second is plenty for one machine.
    os.environ.setdefault("RAY_SERVE_CONTROL_LOOP_INTERVAL_S", CONTROL_LOOP_S)
    # Each process hands its metrics to its node's agent (loopback, where the supervisor reads them:
    # serving/cluster/metrics_reader.py) every 10 s by default: too coarse for live figures.
    os.environ.setdefault("RAY_metrics_report_interval_ms", METRICS_REPORT_MS)
    # Every ingress replica also serves HTTP on a loopback port of its own, which the app's port
    # relays to (serving/front/port_relay.py): Serve's proxy costs ~5 ms per request. No 30 s drain on
    # stop: it gives outside load balancers time to notice; our relay sends what a stopped
    # replica refuses to Serve's proxy, and hears of the change within a status poll.
    os.environ.setdefault("RAY_SERVE_ENABLE_DIRECT_INGRESS", "1")
    os.environ.setdefault("RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S", "0")
    # glibc gives each thread that allocates an arena of its own, up to 8 per core; Ray's processes run
    # ~30 threads each. Two arenas: ~33 MB less over the cluster's processes (~19 MB of it in a model
    # replica), read by each process at its start (GCS, raylet, agents, workers; not this driver).
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")
    # (Serve's handle routers and deployments on each replica's own event loop,
    # RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP=0 / RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD=0, looked
    # ~1.5 ms faster in single runs but not in the median of 3: left at Serve's defaults.)
