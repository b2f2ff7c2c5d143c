"""The checks a start makes against Ray: a cluster `ray.init()` would join by itself, an address that
answers, Serve already running there, and whether the config fits the cluster it gets. The Qt-free
fit rules themselves are serving/core/preflight.py's; this module reads what Ray reports."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from serving.core import machine
from serving.core.config import APP_NAME, LaunchConfig
from serving.core.preflight import StartError, check_fits, check_port_free, local_capacity


def other_cluster() -> str | None:
    """A cluster `ray.init()` would join: RAY_ADDRESS, or the one `ray start` recorded (maybe long dead)."""
    if os.environ.get("RAY_ADDRESS"):
        return f"RAY_ADDRESS={os.environ['RAY_ADDRESS']}"
    try:
        recorded = Path("/tmp/ray/ray_current_cluster").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return f"recorded by `ray start` in /tmp/ray/ray_current_cluster: {recorded}" if recorded else None


def check_address_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast on a host:port nobody listens on (ray.init would retry for minutes)."""
    hostport = address.removeprefix("ray://")
    if address == "auto" or ":" not in hostport:
        return
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise StartError(f"cannot reach the Ray cluster at {address}: {reason}",
                         "check the address and that the cluster is up (`ray status --address ...`)") from None


def check_token(address: str, token: str | None) -> None:
    """On an existing cluster: a token it needs and we lack, or one it refuses, said as such at once."""
    from serving.ray_private.tokens import gcs_refuses_token

    hostport = address.removeprefix("ray://")
    if address == "auto" or address.startswith("ray://") or ":" not in hostport or not gcs_refuses_token(hostport):
        return
    if token is None:
        raise StartError(f"the Ray cluster at {address} requires Ray's token authentication, and no token was "
                         "found here (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token)",
                         "copy the cluster's token (on its head: `ray get-auth-token`, or ~/.ray/auth_token) into "
                         "~/.ray/auth_token here, or point RAY_AUTH_TOKEN_PATH at a file holding it")
    raise StartError(f"the Ray cluster at {address} refused the token from {token}",
                     "use that cluster's own token (on its head: `ray get-auth-token`, or ~/.ray/auth_token)")


def check_cluster_serve(config: LaunchConfig) -> None:
    """On an existing cluster: Serve's proxy port is the cluster's; never take over another app."""
    from ray import serve

    from serving.ray_private import serve_client, serve_http_port

    address, http = config.cluster.address, config.http
    client = serve_client()
    if client is None:  # Serve is not running there yet: we start its proxy
        check_port_free(http.host, http.port)
        return
    if APP_NAME in serve.status().applications:
        raise StartError(f"an app named {APP_NAME!r} already runs on the Ray cluster at {address}",
                         "stop it first (`gradio-serve down`, or `serve shutdown` / a new `serve deploy` on the cluster)")
    port = serve_http_port(client)
    if port != http.port:
        raise StartError(f"Serve on the Ray cluster at {address} already listens on port {port}, not {http.port}",
                         f"start again with --port {port}")


def check_local_resources(config: LaunchConfig) -> None:
    """The local cluster's size (configured, else this machine's, as serving/core/machine.py counts it) fits."""
    cpus, gpus = local_capacity(config.cluster, machine.cpu_count(), machine.gpu_count())
    check_fits(config, cpus, gpus, "this machine" if not config.cluster.num_cpus else "the local cluster")


def check_cluster_resources(config: LaunchConfig, resources: dict) -> None:
    check_fits(config, resources.get("CPU", 0), resources.get("GPU", 0), "the Ray cluster")
