"""The app's own port (8000): each request sent straight to the Gradio replica it belongs to, on
the replica's own HTTP port; Serve's proxy takes what no replica's port can.

Why: Serve's proxy costs ~12 ms of CPU and ~6 ms of latency per gradio_client call on this kind
of machine (two HTTP requests, each a streaming actor call plus the replica's call back to the
proxy for the body). With Serve's direct ingress (RAY_SERVE_ENABLE_DIRECT_INGRESS=1, set for a
cluster we start) every Gradio replica also serves HTTP itself, on a loopback port of its own;
relaying there costs a fraction of a millisecond.

- One replica: each connection is relayed whole, byte for byte.
- Several: sessions must stick to their replica (serving/sessions.py). Each request's head is
  read (method, path, cookie, host) and the request goes to its replica, whatever connection
  it came on: a browser reuses connections across requests. Responses are passed back as they
  come. A request body of unknown length (chunked) or a protocol switch (websocket) keeps the
  rest of that connection where it went.
- A replica that is gone (killed, or replaced by an apply) refuses the connection: the relay
  forgets it and routes the request anew among the others, so a dead replica's session moves
  once and stays where it moved (serving/sessions.py). Serve's proxy takes the requests while
  the relay knows no replica. A replica killed just as a request reached it over a kept-alive
  connection ends that connection unanswered: the request (kept until its answer starts) goes
  again, as a new one, and finds the replica's port refusing.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from .sessions import SessionRoutes, pinned_replica, starts_session

UPSTREAM_HOST = "127.0.0.1"
MAX_HEAD = 64 * 1024  # a longer request head is relayed whole to Serve's proxy, which answers it
PROXY = ""  # the key of Serve's proxy among a connection's upstreams
BACKLOG = 2048  # connections waiting to be accepted, as uvicorn (Serve's proxy) allows
MAX_RESEND = 1024 * 1024  # a longer request (an upload) is not kept to be sent again
RESENDS = 3  # times one request is sent again after its upstream ended without answering


class _Side(asyncio.Protocol):
    """One end of a relayed connection: the client's, or an upstream server's."""

    def __init__(self, conn, key: str | None = None):
        self.conn, self.key = conn, key
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.conn.received(self, data)

    def eof_received(self) -> bool:
        return self.conn.eof(self)

    def connection_lost(self, exc) -> None:
        self.conn.lost(self)

    # Flow control: a side whose reader is slow pauses reading on the side(s) feeding it.
    def pause_writing(self) -> None:
        for feeder in self.conn.feeders(self):
            feeder.transport.pause_reading()

    def resume_writing(self) -> None:
        for feeder in self.conn.feeders(self):
            feeder.transport.resume_reading()


class _Connection:
    """A client's connection and its upstream connections (one per replica it reached)."""

    def __init__(self, relay: PortRelay, routed: bool):
        self.relay = relay
        self.routed = routed  # False: the first upstream takes the whole connection
        self.client = _Side(self)
        self.upstreams: dict[str, _Side] = {}
        self.buffer = bytearray()  # the client's bytes not yet passed on
        self.current: _Side | None = None  # where the current request (and its body) went
        self.body_left = 0
        self.whole = False  # the rest of the connection goes to `current` unread
        self.unanswered: bytearray | None = None  # the request sent to `current`, until its answer starts
        self.resends = 0
        self.connecting = None  # the task connecting an upstream; the client's bytes wait meanwhile
        self.client_eof = False

    # -- the client's bytes ---------------------------------------------------------------
    def received(self, side: _Side, data: bytes) -> None:
        if side is not self.client:
            if side is self.current:
                self.unanswered, self.resends = None, 0  # answered: it will not go again
            self.client.transport.write(data)
            return
        self.buffer += data
        self.pass_on()

    def pass_on(self) -> None:
        while self.buffer and self.connecting is None:
            if self.current is not None and (self.whole or self.body_left):
                n = len(self.buffer) if self.whole else min(self.body_left, len(self.buffer))
                chunk = bytes(self.buffer[:n])
                self.current.transport.write(chunk)
                self._keep(chunk)
                del self.buffer[:n]
                if not self.whole:
                    self.body_left -= n
                continue
            head = None
            if self.routed:  # at the start of a request
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0 and len(self.buffer) <= MAX_HEAD:
                    return  # the head is not all here yet
                head = _Head.parse(bytes(self.buffer[:end + 4])) if end >= 0 else None
            key = self.relay.route(head) if head else self.relay.first_choice()
            upstream = self.upstreams.get(key)
            if upstream is None or upstream.transport.is_closing():
                self.connecting = asyncio.get_running_loop().create_task(self.connect(key))
                return
            self.current = upstream
            if head is None:  # one replica, or a head we do not read: the rest goes there unread
                self.whole, self.unanswered = True, None
                continue
            upstream.transport.write(head.raw)
            self.unanswered = None if head.unbounded else bytearray(head.raw)
            del self.buffer[:len(head.raw)]
            self.body_left, self.whole = head.content_length, head.unbounded
        done = self.client_eof and not self.buffer and self.connecting is None and self.current is not None
        if done and self.current.transport.can_write_eof():
            self.current.transport.write_eof()  # the client's half-close, after all it sent

    def _keep(self, chunk: bytes) -> None:
        if self.unanswered is None:
            return
        if len(self.unanswered) + len(chunk) > MAX_RESEND:
            self.unanswered = None
        else:
            self.unanswered += chunk

    async def connect(self, key: str) -> None:
        port = self.relay.proxy_port if key == PROXY else self.relay.replicas.get(key)
        side = _Side(self, key)
        try:
            if port is None:
                raise ConnectionRefusedError(f"replica {key} is gone")
            await asyncio.get_running_loop().create_connection(lambda: side, UPSTREAM_HOST, port)
        except OSError:
            self.connecting = None
            if key == PROXY or self.client.transport.is_closing():
                self.client.transport.close()
                return
            # A replica that went away: the relay forgets it until the supervisor hears of it
            # again, and the request is routed anew, by the same rules (its session moves once).
            self.relay.gone(key)
            self.pass_on()
            return
        self.connecting = None
        if self.client.transport.is_closing():
            side.transport.close()
            return
        self.upstreams[key] = side
        self.pass_on()

    # -- ends ---------------------------------------------------------------------------------
    def feeders(self, side: _Side) -> list[_Side]:
        if side is self.client:
            return [u for u in self.upstreams.values() if u.transport is not None]
        return [self.client]

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
            self.relay.connections.discard(self)
            return
        if self.upstreams.get(side.key) is side:
            del self.upstreams[side.key]
        if side is not self.current:
            return
        if self.unanswered and self.resends < RESENDS and not self.client.transport.is_closing():
            # It ended before answering (killed as the request arrived): the request goes again, as a
            # new one. A dead replica's port refuses: it is forgotten and the request routed anew.
            self.resends += 1
            self.buffer[:0] = self.unanswered
            self.current, self.unanswered, self.body_left = None, None, 0
            self.pass_on()
            return
        # Mid-answer or idle, the client's connection ends with it (as with one server).
        self.client.transport.close()

    def close(self) -> None:
        self.client.transport.close()
        for upstream in self.upstreams.values():
            upstream.transport.close()


@dataclass(frozen=True, slots=True)
class _Head:
    """What routing needs of a request head, read the way an ASGI server reads it."""

    raw: bytes
    scope: dict  # method, path (unquoted, no query), headers (names in lower case): what sessions.py reads
    content_length: int
    unbounded: bool  # chunked, or a protocol switch: the connection's rest goes where this went

    @classmethod
    def parse(cls, raw: bytes) -> _Head | None:
        lines = raw.split(b"\r\n")
        try:
            method, target, _version = lines[0].decode("latin-1").split(" ")
            headers = []
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(b":")
                    headers.append((name.strip().lower(), value.strip()))
        except ValueError:
            return None
        fields = dict(headers)
        try:
            length = int(fields.get(b"content-length", b"0"))
        except ValueError:
            return None
        unbounded = b"chunked" in fields.get(b"transfer-encoding", b"").lower() or b"upgrade" in fields
        path = unquote(urlsplit(target).path or "/")
        return cls(raw, {"method": method, "path": path, "headers": headers}, length, unbounded)


class PortRelay:
    """Listens on (host, port) in a thread of its own. `replicas`: the app's live Gradio replicas
    that serve HTTP themselves (replica id -> port), empty until the supervisor hears of them;
    `proxy_port`: Serve's proxy."""

    def __init__(self, host: str, port: int, proxy_port: int, app_name: str):
        self.host, self.port, self.proxy_port, self.app_name = host, port, proxy_port, app_name
        self.deployment = ""  # the Gradio deployment's name (its session cookie's)
        self.replicas: dict[str, int] = {}
        self.routes = SessionRoutes()
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

    def point_at(self, deployment: str, replicas: dict[str, int]) -> None:
        """New requests go to these replicas (read by the relay's thread as they come)."""
        self.deployment, self.replicas = deployment, dict(replicas)

    def gone(self, replica: str) -> None:
        """A replica that refused a connection: no more requests go to it until point_at names it again."""
        self.replicas = {k: v for k, v in self.replicas.items() if k != replica}

    def first_choice(self) -> str:
        """Where a connection relayed whole goes: the one replica, else Serve's proxy."""
        replicas = self.replicas
        return next(iter(replicas)) if len(replicas) == 1 else PROXY

    def route(self, head: _Head) -> str:
        candidates = list(self.replicas)
        if not candidates:
            return PROXY
        pinned = pinned_replica(head.scope, self.app_name, self.deployment)
        return self.routes.choose(pinned, starts_session(head.scope), candidates)[0][0]

    def _accept(self) -> _Side:
        conn = _Connection(self, routed=len(self.replicas) > 1)
        self.connections.add(conn)
        return conn.client

    def stop(self) -> None:
        if self._thread is None:
            return

        async def close() -> None:
            self._server.close()
            for conn in list(self.connections):
                conn.close()
            await asyncio.sleep(0)  # their connection_lost callbacks run

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._thread = None
