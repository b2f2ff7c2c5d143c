"""What the supervisor tells the app's port (serving/front/port_relay.py) after each status poll:
the Gradio replicas that serve HTTP themselves, and whether those that left were scaled down (to be
drained for their sessions, serving/front/draining.py) or replaced by a new version of the app."""

from __future__ import annotations

from serving.core.config import APP_NAME, LaunchConfig
from serving.front.port_relay import PortRelay

# Serve's status is polled often while something changes, and less once it runs: each poll costs
# the controller and us a few ms of CPU, which the models want.
STEADY_POLL_S = 2.0
# While autoscaling may scale your app down: the relay must hold a removed replica before Serve's drain first
# looks for requests in flight (graceful_shutdown_wait_loop_s, 2 s).
SCALING_POLL_S = 0.5


def steady_poll_s(config: LaunchConfig) -> float:
    """Once the app runs. (An apply is polled at the supervisor's start pace: it removes replicas then.)"""
    app = config.app
    scales = app and app.autoscaling and app.autoscaling.max_replicas > 1
    return SCALING_POLL_S if scales and app.session_drain_s > 0 else STEADY_POLL_S


def replaces_replicas(before: LaunchConfig, after: LaunchConfig) -> bool:
    """Whether deploying `after` over `before` starts new replicas of your app (a rollout)."""
    from serving.replica.apps import user_app_identity

    return not (before.app and after.app) or user_app_identity(before) != user_app_identity(after)


def point_relay(relay: PortRelay, config: LaunchConfig, rollout: bool) -> str | None:
    """Points the relay at the app's replicas (until there are some, and for what they cannot take,
    Serve's proxy does); a line to log when they changed (which joined, which left)."""
    from serving.ray_private import direct_ingress_replicas

    deployment, ports = direct_ingress_replicas(APP_NAME)
    # A replica on another machine (one that joined) is reached through Serve's proxy, whose router
    # keeps its sessions there (serving/replica/sticky.py).
    replicas = {replica: port or relay.proxy_port for replica, port in ports.items()}
    elsewhere = frozenset(replica for replica, port in ports.items() if port is None)
    relay.draining.drain_s = config.app.session_drain_s if config.app else 0.0
    joined, left = relay.point_at(deployment, replicas, scaling_down=not rollout, via_proxy=elsewhere)
    if not (joined or left):
        return None
    n = len(replicas)
    where = f"straight to the app's {n} Gradio replica{'s' * (n > 1)}" if n else "to Serve's proxy"
    changes = "; ".join(f"{what}: {', '.join(ids)}" for what, ids in (("joined", joined), ("left", left)) if ids)
    return f"port {config.http.port} now goes {where} ({changes})"
