"""Sticky sessions: every request of one browser or gradio_client session reaches one replica.

Gradio keeps a session's queue, its `gr.State`, its uploads and its login in the memory of
the process that served it, so a Gradio app with several replicas needs affinity. Why a
cookie:
- Browsers send cookies with every request (page, assets, queue join, SSE, uploads), and
  `gradio_client` keeps the cookies of its first `/config` answer for the whole session
  (it does this for cookie affinity behind Kubernetes). Nothing else is sent by both:
  Gradio's `session_hash` travels in the body of `queue/join`, which a router never sees.
- Serve's multiplexing header and its `x-session-id` header need the client to set a
  header; no browser does.
- Whoever routes chooses the replica per request, before the body is read, from the
  request's head (method, path, headers). The replica answers with a cookie naming itself.
  Two apply these rules (`SessionRoutes`): the app's port (serving/port_relay.py), which
  sends each request straight to its replica's own port, and Serve's request router in
  Serve's proxy (serving/sticky.py), where the app's port sends what it cannot reach.

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
- `POST /gradio_api/call/<api>` (and `.../call/v2/<api>`, the "Use via API" page's) answers an
  event id that carries the replica's name (`<id>~<replica>`), so the `GET .../call/<api>/<event
  id>` that fetches the result finds it even from curl without cookies. The replica strips the
  tag before Gradio sees it.
- Cookies are read as Starlette (so Gradio) reads them: one odd cookie that another app on the
  host sets (JSON, a space, a flag without `=`) hides none of the others. A value that is not of
  our form (`<replica>.<hex nonce>`) is ignored.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from collections import OrderedDict, defaultdict, deque

EVENT_TAG = "~"
# GET /gradio_api/call/<api>/<event id> (and /call/v2/...): the last segment is the event id. Only a
# GET (or HEAD) is a result's: `POST .../call/v2/<api>` has the same shape and is a submission.
CALL_RESULT = re.compile(r"/gradio_api/call/(?:v2/)?[^/]+/([^/]+)/?$")
RESULT_METHODS = ("GET", "HEAD")
# POST /gradio_api/call/<api> and /call/v2/<api>: answered with an event id.
CALL_SUBMIT = re.compile(r"/gradio_api/call/(?:v2/)?[^/]+/?$")
# A replica's id as Serve writes it, and new_cookie_value's form: what is not ours is ignored.
REPLICA = re.compile(r"[A-Za-z0-9_-]{1,64}")
OUR_VALUE = re.compile(REPLICA.pattern + r"\.[0-9a-f]{1,32}")
# Where a browser or a client starts a session: the page, or Gradio's config/login/API info.
SESSION_ENTRY = re.compile(r"(^/?$|/$|/config/?$|/login/?$|/gradio_api/info/?$)")
# New sessions counted for spreading: those routed within this window.
RECENT_S = 30.0
# Sessions of dead replicas remembered where they moved, in bytes (the oldest are forgotten first);
# an entry is counted as its two strings plus what the dict spends on it.
MAX_MOVED_BYTES = 16 * 1024 * 1024
ENTRY_BYTES = 200


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
    """Our cookie's value, if the request carries one of our form (the first: a browser sends the
    cookie of the longest path first)."""
    for key, value in scope.get("headers") or ():
        if key.lower() == b"cookie":
            # Starlette's cookie_parser, less the unquoting our values never need: split on `;`,
            # then on the first `=`; whatever a pair holds, it spoils no other.
            for pair in value.decode("latin-1").split(";"):
                key_part, eq, val = pair.partition("=")
                if eq and key_part.strip() == name and OUR_VALUE.fullmatch(val := val.strip()):
                    return val
    return None


def new_cookie_value(replica: str) -> str:
    """`<replica>.<nonce>`: names the replica, and tells this session's cookie from its neighbours'."""
    import secrets

    return f"{replica}.{secrets.token_hex(6)}"


def replica_of(value: str | None) -> str | None:
    return value.partition(".")[0] or None if value else None


def event_replica(path: str, method: str = "GET") -> str | None:
    """The replica named by a tagged event id in a call-result path."""
    match = CALL_RESULT.search(path) if method in RESULT_METHODS else None
    if match and EVENT_TAG in match[1] and REPLICA.fullmatch(replica := match[1].rpartition(EVENT_TAG)[2]):
        return replica
    return None


def starts_session(scope: dict) -> bool:
    return scope.get("method") in ("GET", "POST") and SESSION_ENTRY.search(scope.get("path", "")) is not None


def pinned_replica(scope: dict, app_name: str, deployment_name: str) -> str | None:
    """The replica this request belongs to (its session cookie, or its event id), if any."""
    event = event_replica(scope.get("path", ""), scope.get("method", "GET"))
    return event or cookie_value(scope, cookie_name(app_name, deployment_name, scope))


def rendezvous(key: str, replica: str) -> bytes:
    return hashlib.sha1(f"{key}/{replica}".encode()).digest()


class SessionRoutes:
    """Where each request goes, among replicas named by their ids (the rules above)."""

    def __init__(self) -> None:
        self._new_sessions: dict[str, deque] = defaultdict(deque)  # replica -> when it took new sessions
        self._stateless: dict[str, deque] = defaultdict(deque)  # replica -> when it took other cookie-less calls
        self._moved: OrderedDict[str, str] = OrderedDict()  # a dead replica's session (cookie) -> its new replica
        self._moved_bytes = 0

    def choose(self, pinned: str | None, starts: bool, candidates: list[str]) -> list[list[str]]:
        """Ranks of replicas to try: a pinned request's own (or where its session moved), else
        the one that took the fewest such requests lately, then the others."""
        if pinned:
            return [[self.home(pinned, candidates)]]
        if len(candidates) == 1:
            return [candidates]
        # New sessions and stateless calls each take turns: neither upsets the other's spread.
        turns = self._new_sessions if starts else self._stateless
        now = time.monotonic()
        first = min(candidates, key=lambda r: (*self._recent(turns, r, now), random.random()))
        turns[first].append(now)
        return [[first], [r for r in candidates if r != first]]

    def home(self, pinned: str, candidates: list[str]) -> str:
        """The replica a pinned request belongs to: its own while it lives, else where its session moved."""
        own = replica_of(pinned)
        if own in candidates:
            return own
        moved = self._moved.get(pinned)
        if moved not in candidates:
            moved = max(candidates, key=lambda r: rendezvous(pinned, r))
            self._forget(pinned)
            self._moved[pinned] = moved
            self._moved_bytes += len(pinned) + len(moved) + ENTRY_BYTES
            while self._moved_bytes > MAX_MOVED_BYTES and len(self._moved) > 1:
                self._forget(next(iter(self._moved)))
        self._moved.move_to_end(pinned)
        return moved

    def _forget(self, pinned: str) -> None:
        moved = self._moved.pop(pinned, None)
        if moved is not None:
            self._moved_bytes -= len(pinned) + len(moved) + ENTRY_BYTES

    @staticmethod
    def _recent(turns: dict[str, deque], replica: str, now: float) -> tuple[int, float]:
        """(how many of these it took lately, when it took the last): least first."""
        times = turns.get(replica)
        if not times:
            return 0, 0.0
        while times and now - times[0] > RECENT_S:
            times.popleft()
        return len(times), times[-1] if times else 0.0
