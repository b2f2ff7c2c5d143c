"""Every use of a private Ray API, in one place (this package; Ray's token authentication in
`tokens.py`), checked against the Ray it was written for.

Ray gives no stability promise for these: a new Ray may rename or change any of them. Each
helper says what it stands in for, so an upgrade checks this package against the new Ray
(then moves WRITTEN_FOR) instead of hunting through the package. A different Ray gets a
clear warning, not a crash: most of these survive minor releases.

Ray itself is imported inside the helpers, so importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pickle
import warnings

# major.minor of the Ray these helpers were read against (pyproject pins ray[serve]==2.60.0).
WRITTEN_FOR = (2, 60)


@functools.cache
def version_mismatch() -> str | None:
    """A warning when the installed Ray is not WRITTEN_FOR (major.minor); None when it is."""
    import ray

    try:
        found = tuple(int(part) for part in ray.__version__.split(".")[:2])
    except ValueError:
        found = ()  # a dev build ("3.0.0.dev0" parses; anything else is unknown)
    if found == WRITTEN_FOR:
        return None
    message = (f"Ray {ray.__version__} is installed, but serving/ray_private/ was written for Ray "
               f"{WRITTEN_FOR[0]}.{WRITTEN_FOR[1]}: Serve's status, sticky sessions, the loopback ports or "
               f"in-place model swaps may misbehave. Install ray[serve]=={WRITTEN_FOR[0]}.{WRITTEN_FOR[1]}.0")
    warnings.warn(message, RuntimeWarning, stacklevel=3)
    return message


def _checked() -> None:
    version_mismatch()  # warns once per process


# -- Serve's controller client (ray.serve.context._get_global_client) ------------------------------


def serve_client():
    """Serve's controller client in this driver, or None when Serve is not running (no public
    equivalent gives the details or the HTTP options of a running Serve)."""
    _checked()
    from ray.serve.context import _get_global_client

    return _get_global_client(raise_if_no_controller_running=False)


def start_serve_without_waiting(http_options: dict) -> list:
    """serve.start on the cluster this driver just started, less its wait for the proxy to be ready:
    the app is submitted while the proxy starts (~0.6 s sooner). Returns the proxy's readiness refs for
    the caller to wait on (a port taken meanwhile fails them, as it fails serve.start)."""
    _checked()
    from ray.serve._private.api import _coerce_controller_options, _create_controller_and_proxy_refs
    from ray.serve._private.client import ServeControllerClient
    from ray.serve.context import _set_global_client

    controller, proxy_ready = _create_controller_and_proxy_refs(
        http_options, None, None, None, _coerce_controller_options(None))
    _set_global_client(ServeControllerClient(controller))
    return proxy_ready


def submit_app(app, name: str, route_prefix: str) -> None:
    """serve.run without waiting for the app to run: it returns once the controller holds the new
    target (the app's status then reads DEPLOYING, not the old version's RUNNING). serve.run's own
    wait polls once a second, which the first answer waited on; the supervisor polls the status itself."""
    _checked()
    from ray.serve.api import _run  # serve.run is _run(_blocking=True)

    _run(app, name=name, route_prefix=route_prefix, _blocking=False)


def shut_serve_down(timeout_s: float = 30.0) -> bool:
    """serve.shutdown() without the failed task Ray reports at its end. serve.shutdown waits on the
    controller's graceful_shutdown(), which never returns: the controller kills itself under it, and the
    driver prints `(raylet) Task ServeController.graceful_shutdown failed ... killed by ray.kill` at every
    stop. Here the call only sets the flag (wait=False) and the controller's end is watched by its name.
    Returns False if it has not ended after timeout_s."""
    _checked()
    import time

    import ray
    from ray.serve._private.constants import SERVE_CONTROLLER_NAME, SERVE_NAMESPACE
    from ray.serve.context import _disconnect

    client = serve_client()
    if client is None:
        return True
    client.shutdown_cached_handles()
    deadline = time.monotonic() + timeout_s
    with contextlib.suppress(ray.exceptions.RayActorError):  # already gone, as serve.shutdown allows
        ray.get(client._controller.graceful_shutdown.remote(wait=False), timeout=timeout_s)
    while True:
        try:
            ray.get_actor(SERVE_CONTROLLER_NAME, namespace=SERVE_NAMESPACE)
        except ValueError:  # its name goes with it
            break
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    client._shutdown = True
    _disconnect()
    return True


def app_status_and_targets(app_name: str, placements: list | None = None):
    """(`app_name`'s ApplicationStatusOverview, each deployment's target replica count); `placements`, if
    given, is refilled with each replica's deployment, replica_id, node_id, node_ip and state.

    serve.status() drops the target (DeploymentStatusOverview has none); the details have it.
    `ServeInstanceDetails._get_status()` is what serve.status() builds its answer with, so one
    controller call gives both."""
    client = serve_client()
    if client is None:
        return None, {}
    from ray.serve.schema import ServeInstanceDetails

    details = ServeInstanceDetails(**client.get_serve_details())
    app = details.applications.get(app_name)
    if app is None:
        return None, {}
    targets = {name: d.target_num_replicas for name, d in app.deployments.items()}
    if placements is not None:
        fields = {"replica_id", "node_id", "node_ip", "state"}
        placements[:] = [{"deployment": name, **r.model_dump(mode="json", include=fields)}
                         for name, d in app.deployments.items() for r in d.replicas]
    return details._get_status().applications.get(app_name), targets


def direct_ingress_replicas(app_name: str) -> tuple[str, dict[str, int | None]]:
    """(`app_name`'s ingress deployment, its running replicas' own HTTP ports by replica id). The
    replicas serve HTTP themselves with Serve's direct ingress (RAY_SERVE_ENABLE_DIRECT_INGRESS=1
    in the controller's environment); without it, or while none runs, the ports are empty. A
    replica on another machine has None: it listens on that machine's loopback (Serve's HTTP host)."""
    client = serve_client()
    if client is None:
        return "", {}
    import ray

    here = ray.util.get_node_ip_address()
    try:
        groups = ray.get(client._controller.get_target_groups.remote(app_name))
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.cause, KeyError):  # no such app yet (one deployed from a task: serving/replica/serve_app.py)
            return "", {}
        raise
    for group in groups:
        replicas = {t.name.rpartition("#")[2]: t.port if t.ip in (here, "127.0.0.1") else None
                    for t in group.targets if t.name.startswith("SERVE_REPLICA::")}
        if group.protocol == "HTTP" and replicas:
            return group.ingress_deployment_name, replicas
    return "", {}


def serve_http_port(client) -> int:
    """The port Serve's proxy listens on (the client's private HTTP options)."""
    return client.http_config.port


# -- deployment versions (Deployment.options(version=..., _internal=True)) -------------------------


def with_version(deployment, version: str):
    """`deployment` pinned to `version`: Serve then only reconfigures (rather than restarts) its
    replicas when just its user_config changes. `version` is accepted only with `_internal=True`."""
    _checked()
    return deployment.options(version=version, _internal=True)


# -- an Application's deployments (Application._bound_deployment) ----------------------------------


def ingress_of(app):
    """The Deployment an Application is served by (its ingress), with its bound arguments."""
    _checked()
    return app._bound_deployment


def deployments_in(app) -> list:
    """Every Deployment an Application binds, the ingress first (bound arguments, nested, in order)."""
    from ray.serve import Application

    found, todo, seen = [], [app], set()
    while todo:
        item = todo.pop(0)
        if isinstance(item, Application):
            if id(item) in seen:  # one Application bound twice is one deployment
                continue
            seen.add(id(item))
            deployment = ingress_of(item)
            found.append(deployment)
            todo.extend(deployment.init_args)
            todo.extend(deployment.init_kwargs.values())
        elif isinstance(item, (list, tuple)):
            todo.extend(item)
        elif isinstance(item, dict):
            todo.extend(item.values())
    return found


def pin_code_versions(app, version_of) -> None:
    """Gives each deployment of the Application the code version `version_of(deployment)` (None: left
    unset), so that a redeploy restarts only those whose version changed (Serve draws a new one for
    every deployment without). Set on the deployments themselves: the application holds them."""
    _checked()
    for deployment in deployments_in(app):
        version = version_of(deployment)
        if version is not None and deployment._version is None:
            deployment._version = version


def with_ingress_options(app, **defaults):
    """The Application with its ingress renamed and given `defaults` for the options its author did not
    set (Deployment.options keeps the bound arguments; user_configured_option_names says what was set)."""
    from ray.serve import Application

    deployment = ingress_of(app)
    chosen = deployment._deployment_config.user_configured_option_names
    return Application(deployment.options(**{k: v for k, v in defaults.items() if k == "name" or k not in chosen}))


# -- ASGI ingress (ray.serve._private.http_util.ASGIAppReplicaWrapper) -----------------------------


def asgi_app_wrapper():
    """The base class Serve treats as an ASGI ingress whose app is built inside the replica
    (`__serve_build_asgi_app__`); `serve.ingress()` makes the same class, but cannot be subclassed
    with a plain `__init__`."""
    _checked()
    from ray.serve._private.http_util import ASGIAppReplicaWrapper

    return ASGIAppReplicaWrapper


async def swap_asgi_app(wrapper, app):
    """Serve the ASGI `app` from now on in this replica's ingress `wrapper`, its lifespan started
    (Serve builds an ingress's app once, with `_set_asgi_app`); returns the old app's lifespan, for the
    caller to shut down. Requests go through the wrapper's `__call__`, which reads `_asgi_app` each time."""
    old_app, old_lifespan = wrapper._asgi_app, getattr(wrapper, "_serve_asgi_lifespan", None)
    wrapper._set_asgi_app(app)
    try:
        await wrapper._run_asgi_lifespan_startup()
    except BaseException:
        wrapper._asgi_app, wrapper._serve_asgi_lifespan = old_app, old_lifespan
        raise
    return old_lifespan


# -- the HTTP request a request router sees (PendingRequest.args[0]) -------------------------------


def http_scope(pending_request) -> dict | None:
    """The ASGI scope of an HTTP request being routed, or None for anything else.

    The proxy hands the replica the request's scope, pickled, as the only argument
    (ray.serve._private.proxy_request_response.ASGIProxyRequest.serialized_replica_arg);
    `metadata.is_http_request` is a field of the private RequestMetadata."""
    if pending_request is None or not pending_request.metadata.is_http_request or not pending_request.args:
        return None
    arg = pending_request.args[0]
    try:
        request = pickle.loads(arg) if isinstance(arg, bytes) else arg
    except Exception:  # noqa: BLE001 - not an HTTP request from the proxy: no affinity
        return None
    scope = getattr(request, "asgi_scope", None)
    return scope if isinstance(scope, dict) else None


def router_deployment(router) -> tuple[str, str]:
    """(app name, deployment name) of the deployment a RequestRouter routes for (its `_deployment_id`)."""
    return router._deployment_id.app_name, router._deployment_id.name


# -- loopback-only ports (ray._private.ray_constants, ray._common.tls_utils, Serve's replica) -------


def disable_cluster_mode() -> None:
    """Ray's local-only mode in this driver: RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER is read once, at
    import, into ray._private.ray_constants.ENABLE_RAY_CLUSTER (already imported here)."""
    _checked()
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False


def run_in_every_worker(hook: str) -> None:
    """Have every worker of the local cluster this driver starts call `hook` ("module.function") at
    its start. Ray's runtime_env `worker_process_setup_hook` does this through an env var it adds to
    the job's runtime env; set in the environment instead (inherited by the raylet and its workers),
    the job's runtime env stays empty, so the workers the raylet starts ahead of time fit it."""
    _checked()
    from ray._private import ray_constants

    os.environ[ray_constants.WORKER_PROCESS_SETUP_HOOK_ENV_VAR] = hook


def import_serve_without_pandas() -> None:
    """Import Serve's utils (ray.serve._private.utils) with pandas hidden. It imports pandas, when
    installed, only to JSON-encode a DataFrame that a deployment returns over HTTP (`pd` may be None
    there); Gradio brings pandas into the environment, and it costs ~33 MB in every process that
    imports Serve: the supervisor, Serve's controller and proxy, each model replica. Nothing we deploy
    returns a DataFrame. pandas stays importable afterwards (Gradio imports it in the ingress)."""
    import sys

    if "pandas" in sys.modules or "ray.serve._private.utils" in sys.modules:
        return  # imported already: nothing left to save
    _checked()
    sys.modules["pandas"] = None  # `import pandas` raises ImportError, which Serve's utils expects
    try:
        import ray.serve._private.utils
    except ImportError:
        # A Ray that needs pandas after all: import Serve as it wants.
        del sys.modules["pandas"]
        import ray.serve._private.utils  # noqa: F401
    finally:
        if "pandas" in sys.modules and sys.modules["pandas"] is None:
            del sys.modules["pandas"]


def wrap_grpc_port_binding(wrap) -> bool:
    """Replace ray._common.tls_utils.add_port_to_grpc_server with `wrap(original)`, also in Serve's
    replica module (ray.serve._private.replica), which imported its own copy. False when Ray has no
    such function or it was wrapped already (marked with `_loopback`)."""
    import sys

    from ray._common import tls_utils

    original = getattr(tls_utils, "add_port_to_grpc_server", None)
    if original is None or getattr(original, "_loopback", False):
        return False
    wrapped = wrap(original)
    wrapped._loopback = True
    tls_utils.add_port_to_grpc_server = wrapped
    replica = sys.modules.get("ray.serve._private.replica")  # imported already: patch its copy too
    if replica is not None and hasattr(replica, "add_port_to_grpc_server"):
        replica.add_port_to_grpc_server = wrapped
    return True


# -- ray.init's private options ---------------------------------------------------------------------


def local_cluster_init_options(node_ip: str, worker_niceness: int, notice_dead_nodes: bool = False) -> dict:
    """ray.init keywords for a local cluster that Ray marks private: the node's IP (every Ray
    process binds there) and the nice level of Ray's workers (Ray's own default is 15).
    `notice_dead_nodes`: GCS takes a node that stops answering for dead in ~3 s rather than ~30 s, so
    Serve replaces its replicas and sessions move before clients give up (machines that joined)."""
    _checked()
    dead_nodes = {"health_check_period_ms": 1000, "health_check_timeout_ms": 1000,
                  "health_check_failure_threshold": 3} if notice_dead_nodes else {}
    return {"_node_ip_address": node_ip, "_system_config": {
        **dead_nodes,
        "worker_niceness": worker_niceness,
        # The raylet's first look for its own object store comes before the store listens, and the
        # next look was 1 s later (on the way to every start). Look every 50 ms, for as long in all (10 s).
        "raylet_client_connect_timeout_milliseconds": 50,
        "raylet_client_num_connect_attempts": 200,
    }}


def look_for_the_new_node_often(interval_s: float = 0.05) -> None:
    """ray.init starting a local cluster waits for its raylet to register with GCS, looking once a
    second (GlobalStateAccessor::GetNode sleeps 1 s between looks; the raylet is up ~0.6 s after
    it starts). Look every `interval_s` first, then let Ray's own look find it at once."""
    _checked()
    import time

    from ray._private import services, state

    original = getattr(services.get_node, "__wrapped__", services.get_node)

    @functools.wraps(original)
    def get_node(gcs_address, node_id):
        global_state = state.GlobalState()
        global_state._initialize_global_state(services._get_gcs_client_options(gcs_address))
        deadline = time.monotonic() + 30
        try:
            with contextlib.suppress(Exception):  # Ray's own look below decides, and says why
                while time.monotonic() < deadline:
                    if any(n.get("NodeID") == node_id and n.get("Alive") for n in global_state.node_table()):
                        break
                    time.sleep(interval_s)
        finally:
            global_state.disconnect()
        return original(gcs_address, node_id)

    services.get_node = get_node


def skip_unused_head_processes(dashboard: bool) -> None:
    """A local cluster without the head processes this app never uses (~290 MB, and less CPU at start):
    the autoscaler monitor (it adds and removes cloud nodes; Serve scales replicas itself) and,
    unless the dashboard is asked for, the dashboard's API server (jobs, state API, Serve's REST
    API: `serve deploy` / `serve status` are for clusters started with `ray start`). The log monitor
    (~85 MB: a process that is little more than `import ray`) runs in this driver instead, as a thread
    (`monitor_worker_logs_here`, after ray.init). ray.init has no option for any of them
    (RayParams.no_monitor and include_log_monitor are not passed through): Node's starters are
    replaced in this driver, which starts the head."""
    _checked()
    from ray._private import node

    node.Node.start_monitor = lambda self: None
    node.Node.start_log_monitor = lambda self: None
    if not dashboard:
        node.Node.start_api_server = lambda self, **kwargs: None


def monitor_worker_logs_here():
    """Ray's log monitor (ray/_private/log_monitor.py: tails this node's worker logs and publishes
    their lines to GCS, whence every driver prints them) on a daemon thread of this driver, in place of
    the process `skip_unused_head_processes` leaves out. Call after ray.init; returns the thread."""
    _checked()
    import logging
    import threading

    import ray
    from ray._private import log_monitor
    from ray._raylet import GcsClient

    logging.getLogger(log_monitor.__name__).setLevel(logging.WARNING)  # its start-up chatter was its own log's
    here = ray._private.worker.global_worker.node
    monitor = log_monitor.LogMonitor(here.node_ip_address, here.get_logs_dir_path(),
                                     GcsClient(address=here.gcs_address), log_monitor.is_proc_alive,
                                     gcs_address=here.gcs_address)

    def run():
        try:
            monitor.run()
        except Exception:  # GCS gone at the end; else the replicas' output is lost: say so
            if ray.is_initialized():
                logging.getLogger(__name__).warning("Ray's log monitor stopped", exc_info=True)

    thread = threading.Thread(target=run, name="ray-log-monitor", daemon=True)
    thread.start()
    return thread
