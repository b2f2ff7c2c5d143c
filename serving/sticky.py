"""Sticky sessions: every request of one browser or gradio_client session reaches one replica.

Gradio keeps a session's queue, its `gr.State`, its uploads and its login in the memory of
the process that served it, so a Gradio app with several replicas needs affinity. Why a
cookie, routed by a Serve request router:
- Browsers send cookies with every request (page, assets, queue join, SSE, uploads), and
  `gradio_client` keeps the cookies of its first `/config` answer for the whole session
  (it does this for cookie affinity behind Kubernetes). Nothing else is sent by both:
  Gradio's `session_hash` travels in the body of `queue/join`, which a router never sees.
- Serve's multiplexing header and its `x-session-id` header need the client to set a
  header; no browser does.
- Serve 2.60's public request-router API (`RequestRouter`, `request_router_config`)
  chooses the replica per request, before the body is read, with the request's ASGI
  scope (headers, path) at hand. The replica answers with a cookie naming itself.

The rules, for a deployment with more than one replica:
- A request whose cookie names a live replica goes there, and waits for it when it is
  busy rather than landing where its session is unknown.
- A cookie that names a replica that died goes to a live replica chosen by rendezvous
  hashing on the cookie (each session's cookie carries its own nonce, so the sessions of
  a dead replica spread over the survivors), and the router remembers that choice: the
  session stays there when Serve starts a replacement (gradio_client never replaces a
  cookie it holds). The survivor's answer sets a fresh cookie where the client takes it.
  The session's state is lost, but it neither hangs nor fails.
- A request without a cookie (a new session, a stateless REST call) goes to the replica
  that took the fewest new sessions lately (round robin, even for a burst of them), or
  to any other when that one is full. A session starts where a client first asks for
  the app (the page, /config, /login, /gradio_api/info): only those answers set the
  cookie and count as new sessions, so a page's own cookie-less side requests (a
  favicon, a prefetch) neither move it nor upset the round robin.
- `POST /gradio_api/call/<api>` answers an event id that carries the replica's name
  (`<id>~<replica>`), so the `GET .../call/<api>/<event id>` that fetches the result finds
  it even from curl without cookies. The replica strips the tag before Gradio sees it.

This module runs in Serve's proxy; it must not import gradio.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from collections import OrderedDict, defaultdict, deque
from http.cookies import CookieError, SimpleCookie

from ray.serve.config import RequestRouterConfig
from ray.serve.request_router import PendingRequest, RequestRouter, RunningReplica

from .ray_private import http_scope, router_deployment

EVENT_TAG = "~"
# GET /gradio_api/call/<api>/<event id> (and /call/v2/...): the last segment is the event id.
CALL_RESULT = re.compile(r"/gradio_api/call/(?:v2/)?[^/]+/([^/]+)/?$")
CALL_SUBMIT = re.compile(r"/gradio_api/call/[^/]+/?$")
# Where a browser or a client starts a session: the page, or Gradio's config/login/API info.
SESSION_ENTRY = re.compile(r"(^/?$|/$|/config/?$|/login/?$|/gradio_api/info/?$)")
# New sessions counted for spreading: those routed within this window.
RECENT_S = 30.0
# Sessions of dead replicas remembered where they moved (the oldest are forgotten first).
MAX_MOVED = 100_000


def cookie_name(app_name: str, deployment_name: str, scope: dict) -> str:
    """One cookie per app, deployment and address: cookies ignore ports, and two apps on one host must
    not collide. The address is the one the client asked for (its Host header), the same whether the
    request came through Serve's proxy or straight to a replica (serving/port_relay.py)."""
    key = f"{app_name}/{deployment_name}/{_addressed(scope)}"
    return "gradio-serve-" + hashlib.sha1(key.encode()).hexdigest()[:10]


def _addressed(scope: dict) -> str:
    for key, value in scope.get("headers") or ():
        if key.lower() == b"host":
            return value.decode("latin-1")
    server = scope.get("server") or ("", 0)  # HTTP/1.0 without a Host
    return str(server[1]) if len(server) > 1 else ""


def cookie_value(scope: dict, name: str) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == b"cookie":
            try:
                jar = SimpleCookie(value.decode("latin-1"))
            except CookieError:
                continue
            if name in jar:
                return jar[name].value
    return None


def new_cookie_value(replica: str) -> str:
    """`<replica>.<nonce>`: names the replica, and tells this session's cookie from its neighbours'."""
    import secrets

    return f"{replica}.{secrets.token_hex(6)}"


def replica_of(value: str | None) -> str | None:
    return value.partition(".")[0] or None if value else None


def event_replica(path: str) -> str | None:
    """The replica named by a tagged event id in a call-result path."""
    match = CALL_RESULT.search(path)
    if match and EVENT_TAG in match[1]:
        return match[1].rpartition(EVENT_TAG)[2] or None
    return None


def starts_session(scope: dict) -> bool:
    return scope.get("method") in ("GET", "POST") and SESSION_ENTRY.search(scope.get("path", "")) is not None


def pinned_replica(scope: dict, app_name: str, deployment_name: str) -> str | None:
    """The replica this request belongs to (its session cookie, or its event id), if any."""
    return event_replica(scope.get("path", "")) or cookie_value(scope, cookie_name(app_name, deployment_name, scope))


def _rendezvous(key: str, replica: RunningReplica) -> bytes:
    return hashlib.sha1(f"{key}/{replica.replica_id.unique_id}".encode()).digest()


class GradioSessionRouter(RequestRouter):
    """Routes a Gradio app's requests by session (see the module's docstring)."""

    def initialize_state(self, **kwargs) -> None:
        self._new_sessions: dict[str, deque] = defaultdict(deque)  # replica -> when it took new sessions
        self._stateless: dict[str, deque] = defaultdict(deque)  # replica -> when it took other cookie-less calls
        self._moved: OrderedDict[str, str] = OrderedDict()  # a dead replica's session (cookie) -> its new replica

    def _affinity(self, pending_request: PendingRequest | None) -> tuple[str | None, bool]:
        """(the session this request belongs to, whether it starts one)."""
        scope = http_scope(pending_request)
        if scope is None:
            return None, False
        return pinned_replica(scope, *router_deployment(self)), starts_session(scope)

    @staticmethod
    def _recent(turns: dict[str, deque], unique_id: str, now: float) -> tuple[int, float]:
        """(how many of these it took lately, when it took the last): least first."""
        times = turns.get(unique_id)
        if not times:
            return 0, 0.0
        while times and now - times[0] > RECENT_S:
            times.popleft()
        return len(times), times[-1] if times else 0.0

    async def choose_replicas(
        self, candidate_replicas: list[RunningReplica], pending_request: PendingRequest | None = None,
    ) -> list[list[RunningReplica]]:
        if pending_request is not None:
            pending_request.routing_context.should_backoff = True  # a busy pinned replica is waited for
        if not candidate_replicas:
            return []
        # Read even with one replica: a session that moves off a dead one must be remembered
        # before Serve's replacement joins (microseconds: the scope is small).
        pinned, starts = self._affinity(pending_request)
        if pinned:
            return [[self._home(pinned, candidate_replicas)]]
        if len(candidate_replicas) == 1:
            return [candidate_replicas]
        # New sessions and stateless calls each take turns: neither upsets the other's spread.
        turns = self._new_sessions if starts else self._stateless
        now = time.monotonic()
        first = min(candidate_replicas, key=lambda r: (*self._recent(turns, r.replica_id.unique_id, now),
                                                       random.random()))
        turns[first.replica_id.unique_id].append(now)
        # Serve tries the first rank, then the least busy of the rest when it is full.
        return [[first], [r for r in candidate_replicas if r is not first]]


    def _home(self, pinned: str, candidates: list[RunningReplica]) -> RunningReplica:
        """The replica a pinned request belongs to: its own while it lives, else where its session moved."""
        live = {r.replica_id.unique_id: r for r in candidates}
        own = live.get(replica_of(pinned))
        if own is not None:
            return own
        moved = live.get(self._moved.get(pinned, ""))
        if moved is None:
            moved = max(candidates, key=lambda r: _rendezvous(pinned, r))
            self._moved[pinned] = moved.replica_id.unique_id
            while len(self._moved) > MAX_MOVED:
                self._moved.popitem(last=False)
        self._moved.move_to_end(pinned)
        return moved


def session_router_config() -> RequestRouterConfig:
    """The `request_router_config` that makes a GradioIngress deployment sticky."""
    return RequestRouterConfig(request_router_class="serving.sticky:GradioSessionRouter")
