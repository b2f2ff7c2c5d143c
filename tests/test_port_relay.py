"""serving/port_relay.py: the app's port relays each connection whole, to the replica's own port
or to Serve's proxy, with real sockets and real HTTP servers (uvicorn, as Serve runs them)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import httpx
import pytest
import uvicorn

from serving.port_relay import PortRelay
from serving.preflight import free_loopback_port


async def _app(scope, receive, send):
    """Answers its own port and path; /echo returns the body; /stream sends 3 chunks."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    me = str(scope["server"][1]).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-server", me)]})
    if scope["path"] == "/stream":
        for i in range(3):
            await send({"type": "http.response.body", "body": b"chunk%d\n" % i, "more_body": True})
            await asyncio.sleep(0.05)
        await send({"type": "http.response.body", "body": b""})
    elif scope["path"] == "/echo":
        await send({"type": "http.response.body", "body": body})
    else:
        await send({"type": "http.response.body", "body": me + b" " + scope["path"].encode()})


class _Server:
    def __init__(self):
        self.port = free_loopback_port()
        self.server = uvicorn.Server(uvicorn.Config(_app, host="127.0.0.1", port=self.port, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)

    def stop(self):
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def servers():
    started = [_Server(), _Server()]
    yield started
    for s in started:
        s.stop()


@pytest.fixture
def relay(servers):
    _, proxy = servers
    r = PortRelay("127.0.0.1", free_loopback_port(), proxy.port)
    r.start()
    yield r
    r.stop()


def _client() -> httpx.Client:
    return httpx.Client(trust_env=False, timeout=10)  # no HTTP proxy from the environment


def test_connections_go_to_the_proxy_until_pointed_at_the_replica(servers, relay):
    replica, proxy = servers
    url = f"http://127.0.0.1:{relay.port}"
    with _client() as first:
        assert first.get(url + "/a").text == f"{proxy.port} /a"
        relay.point_at(replica.port)
        # A keep-alive connection stays where it started; a new one goes to the replica.
        assert first.get(url + "/b").headers["x-server"] == str(proxy.port)
        with _client() as second:
            assert second.get(url + "/c").text == f"{replica.port} /c"
        relay.point_at(None)
        with _client() as third:
            assert third.get(url + "/d").headers["x-server"] == str(proxy.port)


def test_a_replica_that_is_gone_sends_new_connections_to_the_proxy(servers, relay):
    _, proxy = servers
    relay.point_at(free_loopback_port())  # nothing listens there
    with _client() as client:
        assert client.get(f"http://127.0.0.1:{relay.port}/x").headers["x-server"] == str(proxy.port)


def test_large_bodies_both_ways_and_a_stream_arrive_whole(servers, relay):
    replica, _ = servers
    relay.point_at(replica.port)
    url = f"http://127.0.0.1:{relay.port}"
    payload = bytes(range(256)) * 40_000  # 10 MB: the relay's flow control pauses and resumes
    with _client() as client:
        answer = client.post(url + "/echo", content=payload)
        assert answer.content == payload and answer.headers["x-server"] == str(replica.port)
        with client.stream("GET", url + "/stream") as stream:
            lines = [line for line in stream.iter_lines()]
        assert lines == ["chunk0", "chunk1", "chunk2"]


def test_a_half_closed_request_still_gets_its_answer(servers, relay):
    replica, _ = servers
    relay.point_at(replica.port)
    with socket.create_connection(("127.0.0.1", relay.port), timeout=10) as sock:
        sock.sendall(b"GET /half HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)  # as `nc -N` does
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200") and f"{replica.port} /half".encode() in answer


def test_a_port_in_use_is_refused_and_stop_frees_the_port(servers):
    _, proxy = servers
    with pytest.raises(OSError):
        PortRelay("127.0.0.1", proxy.port, proxy.port).start()
    r = PortRelay("127.0.0.1", free_loopback_port(), proxy.port)
    r.start()
    with _client() as client:
        assert client.get(f"http://127.0.0.1:{r.port}/").status_code == 200
        r.stop()
        with pytest.raises(httpx.TransportError):
            client.get(f"http://127.0.0.1:{r.port}/")
    assert r.connections == set()
    with socket.socket() as sock:  # the port is free again at once
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", r.port))
