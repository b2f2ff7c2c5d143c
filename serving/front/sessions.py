"""Sticky sessions: every request of one browser or gradio_client session reaches one replica.

Gradio keeps a session's queue, its `gr.State`, its uploads and its login in the memory of
the process that served it, so a Gradio app with several replicas needs affinity. Why a
cookie:
- Browsers send cookies with every request (page, assets, queue join, SSE, uploads), and
  `gradio_client` keeps the cookies of its first `/config` answer for the whole session
  (it does this for cookie affinity behind Kubernetes). Nothing else is sent by both, and
  from the first request: Gradio's `session_hash` is sent by neither with the page or /config.
- Serve's multiplexing header and its `x-session-id` header need the client to set a
  header; no browser does.
- Whoever routes chooses the replica per request, before the body is read (but for a
  small cookie-less POST, below), from the request's head (method, path, query, headers).
  The replica answers with a cookie naming itself.
  Two apply these rules (`SessionRoutes`): the app's port (serving/front/port_relay.py), which
  sends each request straight to its replica's own port, and Serve's request router in
  Serve's proxy (serving/replica/sticky.py), where the app's port sends what it cannot reach.

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
- Gradio's MCP server (MCP clients keep no cookies): the session id a replica mints (the SSE
  transport's `session_id`, an `mcp-session-id` header) is tagged the same way, and a request that
  carries it (query or header) goes to that replica, through Serve's proxy too.
- A request without our cookie (curl, a client that keeps no cookies: Gradio's JS client under
  Node) that names a Gradio session (its `session_hash`, or an upload's `upload_id`; where, see
  the table) goes to the replica that rendezvous hashing of that key picks among the live
  replicas: the requests of one session agree with no memory, and waits for it when busy. The
  app's port reads the key in a POST's JSON body too (Content-Length up to MAX_KEYED_BODY, read
  before the request is routed); Serve's router sees the head only (path and query).
- Cookies are read as Starlette (so Gradio) reads them: one odd cookie that another app on the
  host sets (JSON, a space, a flag without `=`) hides none of the others. A value that is not of
  our form (`<replica>.<hex nonce>`) is ignored.

Gradio 6's routes (gradio/routes.py, gradio/mcp.py) whose work spans requests, and how each finds
its replica without our cookie (with it, every one goes by the cookie; a browser always has it).
Paths are under /gradio_api/; "hash" is rendezvous hashing of the key over the live replicas.

| requests of one flow                                    | tied by         | without our cookie           |
|---------------------------------------------------------|-----------------|------------------------------|
| REST (curl recipe): POST call[/v2]/<api>, GET           | event id        | the id tagged <id>~<replica> |
|   call[/v2]/<api>/<event id>                            |                 |                              |
| the same with {"session_hash"} (gr.State over REST)     | session_hash    | hash (body*)                 |
| queue: POST queue/join {"session_hash"}, GET queue/data | session_hash    | hash (query, path; body*)    |
|   ?session_hash=, POST cancel, GET heartbeat/<hash>     |                 |                              |
| POST component_server, run|api/<api> {"session_hash"}   | session_hash    | hash (body*); a multipart    |
|                                                         |                 | component_server: cookie only|
| streamed input: POST stream/<event id> {"session_hash"},| session_hash,   | hash (body*); close: cookie  |
|   POST stream/<event id>/close                          | the queue's id  | only                         |
| streamed media out: GET stream/<hash>/<run>/<comp>/...  | session_hash    | hash (path)                  |
| GET deep_link?session_hash=, then GET /?deep_link=<id>  | session_hash    | hash; the link: any replica**|
| POST upload?upload_id=, GET upload_progress?upload_id=, | upload_id, the  | hash (query); the file: any  |
|   then the file's path in a call                        | upload folder   | replica**                    |
| a file out: GET file=<path> (file/<path>)               | Gradio's cache  | any replica**                |
| POST /login, then Gradio's token cookie                 | tokens in memory| ours: /login starts a session|
| MCP over SSE: GET mcp/sse, whose first event names      | the session id  | the id tagged <id>~<replica> |
|   messages/?session_id=<id>; POST there                 | the replica     | in that event; the replica   |
|                                                         | mints           | strips the tag               |
| MCP streamable HTTP: POST (GET, DELETE) mcp/            | nothing: Gradio | any replica; an mcp-session- |
|                                                         | runs it         | id header (a server keeping  |
|                                                         | stateless       | sessions): tagged as above   |

*: a POST's JSON body is read by the app's port only; through Serve's proxy it goes round robin.
**: on one machine: Gradio's upload folder and cache (GRADIO_TEMP_DIR, else the system's temp dir)
are shared by its replicas, and Gradio serves any file in them; a replica on another node does not
see them. Gradio 6 has no websocket route.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from collections import OrderedDict, defaultdict, deque
from collections.abc import Callable

EVENT_TAG = "~"
# The app's port holds a replica that scaling removes with a request to this path (it counts as
# in flight, so Serve's drain waits; serving/front/draining.py). Clients never reach it.
HOLD_PATH = "/-/gradio-serve/hold"
# The supervisor's reload on save asks each local replica to swap in the saved code here, straight to
# its own port (serving/cluster/reloader.py); only with the cluster's key, and never from a client.
SWAP_PATH = "/-/gradio-serve/swap"
SWAP_KEY_ENV = "GRADIO_SERVE_SWAP_KEY"
SWAP_KEY_HEADER = "x-gradio-serve-key"
OWN_PATHS = (HOLD_PATH, SWAP_PATH)
# GET /gradio_api/call/<api>/<event id> (and /call/v2/...): the last segment is the event id. Only a
# GET (or HEAD) is a result's: `POST .../call/v2/<api>` has the same shape and is a submission.
CALL_RESULT = re.compile(r"/gradio_api/call/(?:v2/)?[^/]+/([^/]+)/?$")
RESULT_METHODS = ("GET", "HEAD")
# POST /gradio_api/call/<api> and /call/v2/<api>: answered with an event id.
CALL_SUBMIT = re.compile(r"/gradio_api/call/(?:v2/)?[^/]+/?$")
# Gradio's MCP server (launch(mcp_server=True)). SSE transport: GET mcp/sse streams an `endpoint` event
# naming `mcp/messages/?session_id=<id>`, where the client POSTs. Streamable HTTP (POST mcp/): a server
# that keeps sessions answers an `mcp-session-id` header, which the client sends back. The replica that
# minted the id tags it `<id>~<replica>` (SessionAffinity) and strips the tag from what comes back.
MCP_PATH = re.compile(r"/gradio_api/mcp(?:/|$)")
MCP_SSE = re.compile(r"/gradio_api/mcp/sse/?$")
MCP_MESSAGES = re.compile(r"/gradio_api/mcp/messages/?$")
MCP_SESSION_HEADER = b"mcp-session-id"
# Where Gradio names a session (or an upload) in a request's head: /heartbeat/<hash>, a streamed
# output's /stream/<hash>/<run>/<component>/<file> (not /stream/<event id>[/close]), and the query.
KEY_IN_PATH = re.compile(r"/gradio_api/(?:heartbeat/([^/]+)|stream/([^/]+)/[^/]+/[^/]+/[^/]+)/?$")
KEY_PARAMS = ("session_hash", "upload_id")
# POSTs whose JSON body may carry "session_hash"; the app's port reads a body up to MAX_KEYED_BODY.
KEY_IN_BODY = re.compile(r"/gradio_api/(?:queue/join|cancel|component_server|(?:call/(?:v2/)?|run/|api/|stream/)[^/]+)/?$")
MAX_KEYED_BODY = 64 * 1024
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
    request came through Serve's proxy or straight to a replica (serving/front/port_relay.py)."""
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


def tag_of(value: str) -> str | None:
    """The replica an id tagged `<id>~<replica>` names."""
    if EVENT_TAG in value and REPLICA.fullmatch(replica := value.rpartition(EVENT_TAG)[2]):
        return replica
    return None


def event_replica(path: str, method: str = "GET") -> str | None:
    """The replica named by a tagged event id in a call-result path."""
    match = CALL_RESULT.search(path) if method in RESULT_METHODS else None
    return tag_of(match[1]) if match else None


def mcp_session(scope: dict) -> str | None:
    """The MCP session id a request names: the SSE transport's `messages/?session_id=` (the last value, as
    Starlette reads it), else the streamable HTTP transport's `mcp-session-id` header."""
    if MCP_MESSAGES.search(scope.get("path", "")):
        query = scope.get("query_string") or b""
        if b"session_id=" in query:
            from urllib.parse import parse_qsl

            found = [v for k, v in parse_qsl(query.decode("latin-1"), keep_blank_values=True) if k == "session_id"]
            if found:
                return found[-1]
    for key, value in scope.get("headers") or ():
        if key.lower() == MCP_SESSION_HEADER:
            return value.decode("latin-1")
    return None


def mcp_replica(scope: dict) -> str | None:
    """The replica that minted the MCP session a request names (its id tagged by SessionAffinity)."""
    session = mcp_session(scope)
    return tag_of(session) if session else None


def starts_session(scope: dict) -> bool:
    path = scope.get("path", "")
    # Not MCP's routes (mcp/, messages/ end in "/"): MCP clients keep no cookies, and Gradio's tools pass the
    # MCP request's headers on to its own loopback client, whose cookie would then disagree.
    return (scope.get("method") in ("GET", "POST") and SESSION_ENTRY.search(path) is not None
            and MCP_PATH.search(path) is None)


# The replica the app's port chose for a request it sends through Serve's proxy (one on another
# machine, which the port cannot reach itself): the proxy's router honours it.
REPLICA_HEADER = b"x-gradio-serve-replica"


def replica_asked(scope: dict) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == REPLICA_HEADER:
            return value.decode("latin-1")
    return None


def pinned_replica(scope: dict, app_name: str, deployment_name: str) -> str | None:
    """The replica this request belongs to (its event id or MCP session id, else its cookie), if any."""
    event = event_replica(scope.get("path", ""), scope.get("method", "GET")) or mcp_replica(scope)
    return event or cookie_value(scope, cookie_name(app_name, deployment_name, scope))


def session_key(scope: dict) -> str | None:
    """The Gradio session (or upload) a request's head names: in its path, else its query (the last
    value, as Starlette reads it)."""
    path = scope.get("path", "")
    if "/gradio_api/" in path and (match := KEY_IN_PATH.search(path)):
        return match[1] or match[2]
    query = scope.get("query_string") or b""
    if b"=" not in query:
        return None
    from urllib.parse import parse_qsl

    found = {k: v for k, v in parse_qsl(query.decode("latin-1"), keep_blank_values=True) if k in KEY_PARAMS}
    return next((found[k] for k in KEY_PARAMS if found.get(k)), None)


def keyed_body_length(scope: dict) -> int:
    """The length of a POST's body that may name its session (a small JSON body of a Gradio route that
    takes one), else 0."""
    if scope.get("method") != "POST" or not KEY_IN_BODY.search(scope.get("path", "")):
        return 0
    lengths = [v for k, v in scope.get("headers") or () if k == b"content-length"]
    headers = dict(scope.get("headers") or ())
    if len(lengths) != 1 or b"transfer-encoding" in headers or headers.get(b"content-type", b"").startswith(
            (b"multipart/", b"application/x-www-form-urlencoded")):
        return 0
    length = lengths[0].strip()
    return int(length) if length.isdigit() and 0 < int(length) <= MAX_KEYED_BODY else 0


def body_session_key(body: bytes) -> str | None:
    """The "session_hash" of a JSON body, as Gradio reads it (the last of repeated keys)."""
    import json

    try:
        value = json.loads(body)
    except ValueError:
        return None
    key = value.get("session_hash") if isinstance(value, dict) else None
    return key if isinstance(key, str) and key else None


def rendezvous(key: str, replica: str) -> bytes:
    return hashlib.sha1(f"{key}/{replica}".encode()).digest()


class SessionRoutes:
    """Where each request goes, among replicas named by their ids (the rules above)."""

    def __init__(self) -> None:
        self._new_sessions: dict[str, deque] = defaultdict(deque)  # replica -> when it took new sessions
        self._stateless: dict[str, deque] = defaultdict(deque)  # replica -> when it took other cookie-less calls
        self._moved: OrderedDict[str, str] = OrderedDict()  # a dead replica's session (cookie) -> its new replica
        self._moved_bytes = 0
        self.said: Callable[[str], None] = lambda _line: None  # what it does, for the supervisor's log
        self._said_lost: deque[str] = deque(maxlen=64)  # replicas whose sessions' moves were said: once each

    def choose(self, pinned: str | None, starts: bool, candidates: list[str],
               key: str | None = None) -> list[list[str]]:
        """Ranks of replicas to try: a pinned request's own (or where its session moved), else the
        one its Gradio session's key hashes to, else the one that took the fewest such requests
        lately, then the others."""
        if pinned:
            return [[self.home(pinned, candidates)]]
        if len(candidates) == 1:
            return [candidates]
        if key:
            return [[max(candidates, key=lambda r: rendezvous(key, r))]]
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
            lost, moved = moved or own, max(candidates, key=lambda r: rendezvous(pinned, r))
            if lost not in self._said_lost:
                self._said_lost.append(lost)
                self.said(f"the sessions on replica {lost} move to the others ({lost} is not among the live "
                          f"replicas {', '.join(sorted(candidates))}), each once")
            self._forget(pinned)
            self._moved[pinned] = moved
            self._moved_bytes += len(pinned) + len(moved) + ENTRY_BYTES
            while self._moved_bytes > MAX_MOVED_BYTES and len(self._moved) > 1:
                self._forget(next(iter(self._moved)))
        self._moved.move_to_end(pinned)
        return moved

    def held_by(self, pinned: str, holding) -> str | None:
        """The replica among `holding` (those being drained) that holds a pinned request's session:
        its own, or the one it moved to."""
        own = replica_of(pinned)
        if own in holding:
            return own
        moved = self._moved.get(pinned)
        return moved if moved in holding else None

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
