"""Ray's token authentication on a cluster we did not start (`--address`), or that we join or open to
others (serving/cluster/joining.py, join_node.py): where the token is, telling this driver to use it,
and asking a cluster's GCS whether it takes ours. Private Ray APIs, as the package says."""

from __future__ import annotations

import os

from serving.ray_private import _checked


def token_source() -> str | None:
    """Where Ray would read this machine's cluster token from (its own order), or None."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "RAY_AUTH_TOKEN"
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if path:
        return f"RAY_AUTH_TOKEN_PATH={path}" if os.path.isfile(os.path.expanduser(path)) else None
    default = os.path.expanduser("~/.ray/auth_token")
    return default if os.path.isfile(default) else None


def use_cluster_token(path: str) -> None:
    """Ray's token authentication, with the token in `path`, for this driver and the cluster it starts."""
    _checked()
    from ray._raylet import Config

    os.environ.pop("RAY_AUTH_TOKEN", None)  # it would win over the file
    os.environ["RAY_AUTH_MODE"], os.environ["RAY_AUTH_TOKEN_PATH"] = "token", path
    Config.initialize("")  # Ray caches its config at import: read the mode again


def cluster_nodes(gcs_address: str) -> list[dict]:
    """The cluster's nodes as `ray.nodes()` lists them, read from its GCS without joining it as a driver."""
    _checked()
    from ray._private import services, state

    global_state = state.GlobalState()
    global_state._initialize_global_state(services._get_gcs_client_options(gcs_address))
    try:
        return global_state.node_table()
    finally:
        global_state.disconnect()


def use_token_if_available() -> str | None:
    """Ray's token authentication for this driver when RAY_AUTH_MODE is unset and a token is at hand;
    returns the token's source. Ray's own CLI (`ray status`, `ray job submit`) does this for any
    address, but ray.init only for a cluster it finds by itself: with an explicit address, as from
    `gradio-serve up --address`, it connects without the token and `ray start`'s cluster refuses."""
    _checked()
    source = token_source()
    if os.environ.get("RAY_AUTH_MODE") is not None or source is None:
        return source if os.environ.get("RAY_AUTH_MODE", "").lower() == "token" else None
    from ray._raylet import Config

    os.environ["RAY_AUTH_MODE"] = "token"  # this driver, and what it starts
    Config.initialize("")  # Ray caches its config at import: read the mode again (as Ray's own helper does)
    return source


def gcs_refuses_token(address: str, timeout_s: float = 5.0) -> bool:
    """Whether the cluster's GCS at host:port refuses this driver's token (or its lack of one): one
    GetClusterId call, answered in milliseconds, where ray.init retries for ~20 s and then says only
    "Failed to connect". Any other answer (or none) is False: ray.init then says what it finds."""
    _checked()
    import grpc
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    token = os.environ.get("RAY_AUTH_TOKEN") if os.environ.get("RAY_AUTH_MODE", "").lower() == "token" else None
    path = os.path.expanduser(os.environ.get("RAY_AUTH_TOKEN_PATH") or "~/.ray/auth_token")
    if token is None and os.environ.get("RAY_AUTH_MODE", "").lower() == "token" and os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            token = f.read().strip()
    metadata = [("authorization", f"Bearer {token}")] if token else []
    with grpc.insecure_channel(address) as channel:
        stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
        try:
            stub.GetClusterId(gcs_service_pb2.GetClusterIdRequest(), metadata=metadata, timeout=timeout_s)
        except grpc.RpcError as exc:
            return exc.code() == grpc.StatusCode.UNAUTHENTICATED
    return False
