"""Serve's request router for a Gradio app with several replicas: the sticky-session rules of
serving/front/sessions.py, applied in Serve's proxy (Serve 2.60's public request-router API,
`RequestRouter` and `request_router_config`, chooses a replica per request with the request's
ASGI scope at hand).

The app's port sends requests straight to their replicas (serving/front/port_relay.py); Serve's proxy
takes those it cannot: on a cluster we did not start, and while the relay does not know the
replicas yet. This module runs in Serve's proxy; it must not import gradio.

What it cannot do: a router sees the request's ASGI scope (method, path, query, headers), never its
body. A cookie-less request that names its Gradio session in its path or query (queue/data,
heartbeat, upload_progress, ...) goes where the session's key hashes, as at the app's port; one
that names it only in its JSON body (queue/join, cancel, call/<api> with a session_hash) goes round
robin here, so through Serve's proxy a client without cookies keeps its session only by chance
(cookies and tagged event ids work as at the app's port).
"""

from __future__ import annotations

import logging

from ray.serve.config import RequestRouterConfig
from ray.serve.request_router import PendingRequest, RequestRouter, RunningReplica

from serving.front.sessions import SessionRoutes, pinned_replica, replica_asked, session_key, starts_session
from serving.ray_private import http_scope, router_deployment


class GradioSessionRouter(RequestRouter):
    """Routes a Gradio app's requests by session (see serving/front/sessions.py)."""

    def initialize_state(self, **kwargs) -> None:
        self._routes = SessionRoutes()
        self._routes.said = logging.getLogger("ray.serve").info  # in the proxy's log, as the app's port says it

    async def choose_replicas(
        self, candidate_replicas: list[RunningReplica], pending_request: PendingRequest | None = None,
    ) -> list[list[RunningReplica]]:
        if pending_request is not None:
            pending_request.routing_context.should_backoff = True  # a busy pinned replica is waited for
        if not candidate_replicas:
            return []
        # Read even with one replica: a session that moves off a dead one must be remembered
        # before Serve's replacement joins (microseconds: the scope is small).
        scope = http_scope(pending_request)
        pinned = pinned_replica(scope, *router_deployment(self)) if scope is not None else None
        starts = scope is not None and starts_session(scope)
        key = session_key(scope) if scope is not None and not pinned else None
        by_id = {r.replica_id.unique_id: r for r in candidate_replicas}
        if not pinned and scope is not None and (asked := replica_asked(scope)) in by_id:
            return [[by_id[asked]]]  # the app's port chose it (a replica on another machine)
        return [[by_id[i] for i in rank] for rank in self._routes.choose(pinned, starts, list(by_id), key)]


def session_router_config() -> RequestRouterConfig:
    """The `request_router_config` that makes a GradioIngress deployment sticky."""
    return RequestRouterConfig(request_router_class="serving.replica.sticky:GradioSessionRouter")
