"""The app's own port (8000): each connection relayed, byte for byte, to the Gradio replica's own
HTTP server when the app has one replica, else to Serve's proxy.

Why: Serve's proxy costs ~5 ms of CPU-bound Python per HTTP request on this kind of machine (a
gradio_client call is two requests, plus a call back to the proxy for each request's body).
With Serve's direct ingress (RAY_SERVE_ENABLE_DIRECT_INGRESS=1, set for a cluster we start) every
ingress replica also serves HTTP itself, on a loopback port of its own; a relayed connection costs
a fraction of a millisecond. An app with several replicas needs sticky sessions, which the
router in Serve's proxy gives (serving/sticky.py): its connections go there.

A connection is relayed whole, so a keep-alive connection, an SSE stream or a websocket stays
with the server it started on. A replica that is gone (replaced, or stopped by an apply)
refuses the connection, which then goes to Serve's proxy, which knows where the app is now.
"""

from __future__ import annotations

import asyncio
import threading

UPSTREAM_HOST = "127.0.0.1"


class _Side(asyncio.Protocol):
    """One end of a relayed connection (the client's, or the upstream server's)."""

    def __init__(self, conn: _Connection):
        self.conn = conn
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.conn.forward(self, data)

    def eof_received(self) -> bool:
        return self.conn.eof(self)

    def connection_lost(self, exc) -> None:
        self.conn.lost(self)

    # Flow control: a slow reader on one side pauses reading on the other.
    def pause_writing(self) -> None:
        peer = self.conn.other(self).transport
        if peer is not None:
            peer.pause_reading()

    def resume_writing(self) -> None:
        peer = self.conn.other(self).transport
        if peer is not None:
            peer.resume_reading()


class _Connection:
    def __init__(self, relay: PortRelay):
        self.relay = relay
        self.client = _Side(self)
        self.upstream = _Side(self)
        self.pending: list[bytes] = []  # what the client sent before the upstream connected
        self.joined = False  # the upstream connected and `pending` written to it
        self.client_eof = False
        self.eofs = 0

    def other(self, side: _Side) -> _Side:
        return self.upstream if side is self.client else self.client

    def forward(self, side: _Side, data: bytes) -> None:
        if not self.joined:  # only the client speaks before the upstream is connected
            self.pending.append(data)
        else:
            self.other(side).transport.write(data)

    def eof(self, side: _Side) -> bool:
        """A half-close is passed on; the connection ends when both sides have closed."""
        self.eofs += 1
        if not self.joined:
            self.client_eof = True  # passed on once the upstream is connected
            return True
        peer = self.other(side).transport
        if self.eofs >= 2 or not peer.can_write_eof():
            self.close()
            return False
        peer.write_eof()
        return True

    def lost(self, side: _Side) -> None:
        peer = self.other(side).transport
        if peer is not None:
            peer.close()  # after what is buffered for it is written
        self.relay.connections.discard(self)

    def close(self) -> None:
        for side in (self.client, self.upstream):
            if side.transport is not None:
                side.transport.close()

    async def connect_upstream(self) -> None:
        loop = asyncio.get_running_loop()
        for port in self.relay.upstream_ports():
            try:
                await loop.create_connection(lambda: self.upstream, UPSTREAM_HOST, port)
                break
            except OSError:
                continue  # a replica that just went away: the next port is Serve's proxy
        else:
            self.client.transport.close()
            return
        upstream = self.upstream.transport
        upstream.writelines(self.pending)
        self.pending.clear()
        self.joined = True
        if self.client.transport.is_closing():
            upstream.close()
        elif self.client_eof:
            upstream.write_eof()


class PortRelay:
    """Listens on (host, port) in a thread of its own; `direct_port` is the single replica's port,
    None while the app has none or several; `proxy_port` is Serve's proxy."""

    def __init__(self, host: str, port: int, proxy_port: int):
        self.host, self.port, self.proxy_port = host, port, proxy_port
        self.direct_port: int | None = None
        self.connections: set[_Connection] = set()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None

    def upstream_ports(self) -> list[int]:
        direct = self.direct_port
        return [direct, self.proxy_port] if direct else [self.proxy_port]

    def start(self) -> None:
        """Binds the port now: OSError (a port in use) is raised here."""
        self._server = self._loop.run_until_complete(
            self._loop.create_server(self._accept, self.host, self.port, reuse_address=True))
        self._thread = threading.Thread(target=self._loop.run_forever, name="port-relay", daemon=True)
        self._thread.start()

    def point_at(self, direct_port: int | None) -> None:
        self.direct_port = direct_port  # read by the relay's thread for each new connection

    def _accept(self) -> _Side:
        conn = _Connection(self)
        self.connections.add(conn)
        # While the upstream connects, the client's bytes wait in `pending`.
        conn.connecting = self._loop.create_task(conn.connect_upstream())  # held: the loop keeps tasks weakly
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
