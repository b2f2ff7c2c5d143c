"""The app's own port (8000): each request sent straight to the Gradio replica it belongs to, on
the replica's own HTTP port; Serve's proxy takes what no replica's port can.

Why: Serve's proxy costs ~12 ms of CPU and ~6 ms of latency per gradio_client call on this kind
of machine (two HTTP requests, each a streaming actor call plus the replica's call back to the
proxy for the body). With Serve's direct ingress (RAY_SERVE_ENABLE_DIRECT_INGRESS=1, set for a
cluster we start) every Gradio replica also serves HTTP itself, on a loopback port of its own;
relaying there costs a fraction of a millisecond.

- Each request is read with httptools (serving/front/http_framing.py), as every replica reads it, and
  passed on written anew; what a replica would refuse is refused here, with uvicorn's answer.
- One replica: each connection's requests all go to it.
- Several: sessions must stick to their replica (serving/front/sessions.py). Each request goes to its
  replica (method, path, query, cookie, host), whatever connection it came on: a browser reuses
  connections across requests. A cookie-less POST whose small JSON body may name its Gradio
  session (queue/join, cancel, ...) is routed once that body is here (it is read whole, up to
  sessions.MAX_KEYED_BODY, within HEAD_TIMEOUT_S as a head is). Responses are passed back as
  they come. A protocol switch (a websocket) keeps the rest of that connection where it went.
- A replica that is gone (killed, or replaced by an apply) refuses the connection: the relay
  forgets it and routes the request anew among the others, so a dead replica's session moves
  once and stays where it moved (serving/front/sessions.py). Serve's proxy takes the requests while
  the relay knows no replica. A replica that ends a connection before answering may have run
  the request (or died of it): only a GET or HEAD goes again; for any other the client's
  connection ends, as it would have with that replica alone, and never reaches a second one.
- A replica that scaling removes keeps serving the sessions pinned to it for a while
  (serving/front/draining.py); new sessions go to the others.
- Slow or idle clients cannot starve the others: a head must be whole within HEAD_TIMEOUT_S,
  at most MAX_CONNECTIONS clients are served at once, and a client is not read while what it
  sent cannot go on (memory stays bounded).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections import deque
from collections.abc import Callable

from serving.front.draining import Draining
from serving.front.http_framing import NOT_FOUND, UNAVAILABLE, Head, Refused, RequestFramer
from serving.front.sessions import (
    OWN_PATHS,
    REPLICA_HEADER,
    SessionRoutes,
    body_session_key,
    keyed_body_length,
    pinned_replica,
    session_key,
    starts_session,
)

UPSTREAM_HOST = "127.0.0.1"
PROXY = ""  # the key of Serve's proxy among a connection's upstreams
BACKLOG = 2048  # connections waiting to be accepted, as uvicorn (Serve's proxy) allows
MAX_CONNECTIONS = 4096  # clients served at once; past it one is answered 503 (uvicorn's limit_concurrency)
HEAD_TIMEOUT_S = 20.0  # a client whose request head is not whole by then is dropped (a slow or idle one)
RESENDS = 3  # times one GET or HEAD is sent again after its upstream ended without answering


class _Side(asyncio.Protocol):
    """One end of a relayed connection: the client's, or an upstream server's."""

    def __init__(self, conn, key: str | None = None):
        self.conn, self.key = conn, key
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        if self.key is None:
            self.conn.started()

    def data_received(self, data: bytes) -> None:
        self.conn.received(self, data)

    def eof_received(self) -> bool:
        return self.conn.eof(self)

    def connection_lost(self, exc) -> None:
        self.conn.lost(self)

    # Flow control: a side whose reader is slow pauses reading on the side(s) feeding it.
    def pause_writing(self) -> None:
        self.conn.writing(self, paused=True)

    def resume_writing(self) -> None:
        self.conn.writing(self, paused=False)


class _Busy(asyncio.Protocol):
    """A client past MAX_CONNECTIONS: answered at once, as uvicorn answers past its limit_concurrency."""

    def connection_made(self, transport) -> None:
        transport.write(UNAVAILABLE)
        transport.close()


class _Connection:
    """A client's connection and its upstream connections (one per replica it reached)."""

    def __init__(self, relay: PortRelay, routed: bool):
        self.relay = relay
        self.routed = routed  # False: every request goes where the first went
        self.client = _Side(self)
        self.upstreams: dict[str, _Side] = {}
        self.framer = RequestFramer()
        self.pending: deque[Head | bytes] = deque()  # framed, waiting for an upstream's connection
        self.current: _Side | None = None  # where the latest request (and its body) went
        self.awaiting = False  # the latest request's answer has not started
        self.resend: Head | None = None  # the latest request while awaiting, where it may go again
        self.resends = 0
        self.connecting: asyncio.Task | None = None
        self.chosen: str | None = None  # where the head first in `pending` goes: routed once, not per try
        self.body_wanted = False  # the head first in `pending` is routed by its body, still coming
        self.full: set[_Side] = set()  # upstreams whose write buffer is full
        self.client_eof = False
        self.head_timer: asyncio.TimerHandle | None = None

    def started(self) -> None:
        self._time_head()

    # -- the client's bytes ---------------------------------------------------------------
    def received(self, side: _Side, data: bytes) -> None:
        if side is not self.client:
            if side is self.current:
                self.awaiting, self.resend, self.resends = False, None, 0  # answered: it will not go again
            self.client.transport.write(data)
            return
        try:
            self.pending.extend(self.framer.feed(data))
        except Refused as refused:
            self.refuse(refused.answer)
            return
        self._time_head()
        self.pass_on()

    def pass_on(self) -> None:
        while self.pending and self.connecting is None:
            item = self.pending[0]
            if isinstance(item, Head):
                if self.chosen is None and not self._choose(item):
                    break  # its body is still coming
                key = self.chosen
                upstream = self.upstreams.get(key)
                if upstream is None or upstream.transport.is_closing():
                    self.connecting = asyncio.get_running_loop().create_task(self.connect(key))
                    break
                self.chosen = None
                upstream.transport.write(self.relay.head_for(key, item))
                self.current, self.awaiting = upstream, True
                self.resend = item if item.resendable else None
            else:
                self.current.transport.write(item)
                self.resend = None  # a body, or a switched protocol's bytes: it does not go again
            self.pending.popleft()
        self._flow()
        self._time_head()
        if self.client_eof and not self.pending and self.connecting is None:
            if self.current is None or not self.current.transport.can_write_eof():
                self.client.transport.close()  # it asked nothing that is still to be answered
            else:
                self.current.transport.write_eof()  # the client's half-close, after all it sent

    def _choose(self, head: Head) -> bool:
        """Sets where the head goes; False while the body that decides it is still coming."""
        if head.scope.get("path") in OWN_PATHS:  # ours, to the replicas' own ports (draining, reload)
            self.refuse(NOT_FOUND)
            return False
        if not self.routed:
            on = self.current is not None and not self.current.transport.is_closing()
            # One replica: the connection stays where it started.
            self.chosen = self.current.key if on else self.relay.first_choice()
            return True
        body = None
        if length := self.relay.body_decides(head):
            body = b"".join(itertools.takewhile(lambda piece: isinstance(piece, bytes),
                                                itertools.islice(self.pending, 1, None)))
            if len(body) < length and not self.client_eof:
                self.body_wanted = True
                return False
        self.body_wanted = False
        self.chosen = self.relay.route(head, body)
        return True

    def _flow(self) -> None:
        """Reads no more of the client while its bytes cannot go on: memory stays bounded."""
        transport = self.client.transport
        if (self.pending and not self.body_wanted) or self.full:
            transport.pause_reading()
        elif not self.client_eof:
            transport.resume_reading()

    def _time_head(self) -> None:
        """A head (and a body that routes it) must arrive whole within HEAD_TIMEOUT_S of its first byte
        (or of the connection, or of the head)."""
        if not self.framer.in_head and not self.body_wanted:
            if self.head_timer is not None:
                self.head_timer.cancel()
                self.head_timer = None
        elif self.head_timer is None:
            self.head_timer = asyncio.get_running_loop().call_later(HEAD_TIMEOUT_S, self.close)

    def refuse(self, answer: bytes) -> None:
        self.pending.clear()
        self.client.transport.write(answer)
        self.close()

    async def connect(self, key: str) -> None:
        port = self.relay.proxy_port if key == PROXY else self.relay.port_of(key)
        side = _Side(self, key)
        try:
            if port is None:
                raise ConnectionRefusedError(f"replica {key} is gone")
            await asyncio.get_running_loop().create_connection(lambda: side, UPSTREAM_HOST, port)
        except OSError as exc:
            self.connecting = self.chosen = None
            if key == PROXY or self.client.transport.is_closing():
                self.close()
                return
            # A replica that went away: the relay forgets it until the supervisor hears of it again,
            # and the request (it never reached a replica) is routed anew (its session moves once).
            self.relay.gone(key, f"{exc.strerror or exc} on port {port}")
            self.pass_on()
            return
        self.connecting = None
        if self.client.transport.is_closing():
            side.transport.close()
            return
        self.upstreams[key] = side
        self.pass_on()

    # -- ends ---------------------------------------------------------------------------------
    def writing(self, side: _Side, paused: bool) -> None:
        if side is self.client:  # the client reads slowly: so are the upstreams read
            for upstream in self.upstreams.values():
                if paused:
                    upstream.transport.pause_reading()
                else:
                    upstream.transport.resume_reading()
            return
        if paused:
            self.full.add(side)
        else:
            self.full.discard(side)
        self._flow()

    def eof(self, side: _Side) -> bool:
        if side is self.client:
            self.client_eof = True  # passed on once what it sent before is
            self.pass_on()
            return True
        return False  # an upstream's end: lost() follows

    def lost(self, side: _Side) -> None:
        if side is self.client:
            for upstream in self.upstreams.values():
                upstream.transport.close()
            if self.connecting is not None:
                self.connecting.cancel()
            if self.head_timer is not None:
                self.head_timer.cancel()
            self.relay.connections.discard(self)
            return
        self.full.discard(side)
        if self.upstreams.get(side.key) is side:
            del self.upstreams[side.key]
        if self.client.transport.is_closing():
            return
        if side is not self.current:
            self._flow()
            return
        self.current = None
        if self.awaiting and self.resend is not None and self.resends < RESENDS:
            # It ended before answering a request that changes nothing (killed as the request arrived):
            # the request goes again. A dead replica's port refuses: it is forgotten, the request routed anew.
            self.resends += 1
            self.pending.appendleft(self.resend)
            self.awaiting, self.resend, self.chosen = False, None, None
            self.pass_on()
            return
        if not self.awaiting and (self.pending or self.connecting is not None):
            return  # idle there, and the next request is on its way elsewhere
        # Mid-answer, idle, or a request that may have run (a POST: never sent twice): the client's
        # connection ends with it, as with one server; its client decides whether to ask again.
        self.close()

    def close(self) -> None:
        self.client.transport.close()
        for upstream in self.upstreams.values():
            upstream.transport.close()


class PortRelay:
    """Listens on (host, port) in a thread of its own. `replicas`: the app's live Gradio replicas
    that serve HTTP themselves (replica id -> port), empty until the supervisor hears of them;
    `proxy_port`: Serve's proxy."""

    def __init__(self, host: str, port: int, proxy_port: int, app_name: str, drain_s: float = 0.0):
        self.host, self.port, self.proxy_port, self.app_name = host, port, proxy_port, app_name
        self.deployment = ""  # the Gradio deployment's name (its session cookie's)
        self.replicas: dict[str, int] = {}
        self.routes = SessionRoutes()
        self.via_proxy: frozenset[str] = frozenset()
        self.draining = Draining(drain_s)
        self.draining.cut = self._cut
        self.said: Callable[[str], None] = lambda _line: None  # what it does, for the supervisor's log
        self.draining.said = self.routes.said = lambda line: self.said(line)
        self._pointed: list[str] = []  # the replicas as point_at last named them (gone() leaves it)
        # Replicas that refused a connection: Serve names a dead one until its health check fails, and
        # the relay tries it again each time; said once.
        self._refused: set[str] = set()
        self.connections: set[_Connection] = set()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Binds the port now: OSError (a port in use) is raised here."""
        # "::" means every address, IPv4's too, as uvicorn binds it (asyncio's own "::" is IPv6 only).
        host = None if self.host == "::" else self.host
        self._server = self._loop.run_until_complete(
            self._loop.create_server(self._accept, host, self.port, reuse_address=True, backlog=BACKLOG))
        self._thread = threading.Thread(target=self._loop.run_forever, name="port-relay", daemon=True)
        self._thread.start()

    def point_at(self, deployment: str, replicas: dict[str, int], scaling_down: bool = False,
                 via_proxy: frozenset[str] = frozenset()) -> tuple[list[str], list[str]]:
        """New requests go to these replicas (read by the relay's thread as they come); from the supervisor's
        thread. `scaling_down`: those that left were scaled down, not replaced by new code: they are drained
        (serving/front/draining.py), but for `via_proxy` ones, on another machine behind Serve's proxy.
        Returns the replicas that joined and left since the last call (not those that refused meanwhile)."""
        joined = [k for k in replicas if k not in self._pointed]
        left = [k for k in self._pointed if k not in replicas]
        removed = {k: v for k, v in self.replicas.items() if k not in replicas and k not in self.via_proxy}
        self._pointed, self._refused = list(replicas), self._refused & replicas.keys()
        self.deployment, self.replicas, self.via_proxy = deployment, dict(replicas), via_proxy
        if scaling_down and removed and replicas and self._thread is not None:
            self._loop.call_soon_threadsafe(self.draining.hold, removed)
        return joined, left

    def gone(self, replica: str, why: str) -> None:
        """A replica that refused a connection: no more requests go to it until point_at names it again."""
        if replica in self.replicas and replica not in self._refused:
            self._refused.add(replica)
            self.said(f"replica {replica} refused a connection ({why}): its sessions move to the others")
        self.replicas = {k: v for k, v in self.replicas.items() if k != replica}
        self.draining.release(replica, "it refused a connection")

    def _cut(self, replica: str) -> None:
        """Ends every client connection that reached `replica` (on the relay's thread)."""
        for conn in [c for c in self.connections if replica in c.upstreams]:
            conn.close()

    def head_for(self, key: str, head: Head) -> bytes:
        """The head as it goes to `key`: to Serve's proxy for a replica on another machine, naming it (sticky.py)."""
        if key in self.via_proxy:
            line, _, rest = head.raw.partition(b"\r\n")
            return line + b"\r\n" + REPLICA_HEADER + b": " + key.encode() + b"\r\n" + rest
        return head.raw

    def port_of(self, replica: str) -> int | None:
        return self.replicas.get(replica) or self.draining.replicas.get(replica)

    def first_choice(self) -> str:
        """Where a connection relayed whole goes: the one replica, else Serve's proxy."""
        replicas = self.replicas
        return next(iter(replicas)) if len(replicas) == 1 else PROXY

    def route(self, head: Head, body: bytes | None = None) -> str:
        candidates = list(self.replicas)
        if not candidates:
            return PROXY
        scope = head.scope
        pinned = pinned_replica(scope, self.app_name, self.deployment)
        if pinned and (held := self.routes.held_by(pinned, self.draining.replicas)):
            chosen = held  # its replica is being drained: it still holds the session
        else:
            key = None if pinned else session_key(scope) or (body_session_key(body) if body else None)
            chosen = self.routes.choose(pinned, starts_session(scope), candidates, key)[0][0]
            if not (pinned or key):
                return chosen
        self.draining.used(chosen)
        return chosen

    def body_decides(self, head: Head) -> int:
        """How much of the request's body its route waits for: a POST whose small JSON body may name
        its Gradio session, when nothing in its head decides (serving/front/sessions.py)."""
        scope = head.scope
        if len(self.replicas) < 2 or pinned_replica(scope, self.app_name, self.deployment) or session_key(scope):
            return 0
        return keyed_body_length(scope)

    def _accept(self) -> asyncio.Protocol:
        if len(self.connections) >= MAX_CONNECTIONS:
            return _Busy()
        conn = _Connection(self, routed=len(self.replicas) + len(self.draining.replicas) > 1)
        self.connections.add(conn)
        return conn.client

    def stop(self) -> None:
        if self._thread is None:
            return

        async def close() -> None:
            self._server.close()
            self.draining.release_all()
            for conn in list(self.connections):
                conn.close()
            await asyncio.sleep(0)  # their connection_lost callbacks run

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._thread = None
