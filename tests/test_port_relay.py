"""serving/front/port_relay.py with real sockets and real HTTP servers (uvicorn, as Serve's direct ingress
runs them): a "replica" is uvicorn serving an app behind the replicas' own session middleware
(serving/replica/gradio_server.py's SessionAffinity); "Serve's proxy" is one more uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import threading
import time

import httpx
import pytest
import uvicorn

from serving.core.preflight import free_loopback_port
from serving.front import draining, port_relay
from serving.front.port_relay import PortRelay
from serving.front.sessions import HOLD_PATH, SWAP_KEY_ENV, SWAP_KEY_HEADER, SWAP_PATH, cookie_name, rendezvous
from serving.replica import gradio_server
from serving.replica.gradio_server import SessionAffinity

APP, DEPLOYMENT = "gradio-serve", "app"


SEEN: dict[int, list[str]] = {}  # server port -> the paths of the requests that reached its app


async def _app(scope, receive, send):
    """Answers who it is and the path; /echo returns the body; /stream sends 3 chunks; /slow waits
    a second; /ws echoes a websocket's messages."""
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while (message := await receive())["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": f"{scope['server'][1]} {message['text']}"})
        return
    if scope["type"] != "http":
        return
    SEEN.setdefault(scope["server"][1], []).append(scope["path"])
    if scope["path"] == "/slow":
        await asyncio.sleep(1)
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
    """uvicorn serving `app` on a loopback port of its own, behind the session middleware if `replica`."""

    def __init__(self, replica: str | None = None, app=_app):
        self.replica = replica
        app = SessionAffinity(app, replica=replica, app_name=APP, deployment=DEPLOYMENT) if replica else app
        self.port = free_loopback_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)

    def stop(self):
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def servers():
    """Replicas aaaa and bbbb, and Serve's proxy (they keep no state between tests)."""
    started = [_Server("aaaa"), _Server("bbbb"), _Server()]
    yield started
    for s in started:
        s.stop()


@pytest.fixture
def relay(servers):
    proxy = servers[-1]
    r = PortRelay("127.0.0.1", free_loopback_port(), proxy.port, APP)
    r.start()
    yield r
    r.stop()


def _client() -> httpx.Client:
    return httpx.Client(trust_env=False, timeout=10)  # no HTTP proxy from the environment


def _cookie(relay) -> str:
    return cookie_name(APP, DEPLOYMENT, {"headers": [(b"host", f"127.0.0.1:{relay.port}".encode())]})


@pytest.mark.parametrize("path", [HOLD_PATH, SWAP_PATH])
@pytest.mark.parametrize("routed", [False, True])
def test_our_own_paths_are_refused_to_clients_and_reach_no_replica(servers, relay, path, routed):
    """The hold (draining) and the reload's swap are the supervisor's, straight to a replica's port."""
    a, b, _ = servers
    relay.point_at(DEPLOYMENT, {"aaaa": a.port, "bbbb": b.port} if routed else {"aaaa": a.port})
    with _client() as c:
        answer = c.post(f"http://127.0.0.1:{relay.port}{path}?code=1&replica=aaaa", headers={SWAP_KEY_HEADER: "k"})
    assert answer.status_code == 404 and "x-server" not in answer.headers


def _asgi_swap(headers: list, method: str = "POST", query: bytes = b"code=abc") -> tuple[int, list]:
    """The status a replica's own port answers to SWAP_PATH, and the stamps its app was asked to swap."""
    asked: list[str] = []

    async def swap(stamp: str, step: str) -> dict:
        asked.append(f"{step} {stamp}")
        return {"ok": stamp != "broken", "error": "demo.py, line 3: expected ':'"}

    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": method, "path": SWAP_PATH, "query_string": query, "headers": headers}
    asyncio.run(gradio_server._swap(scope, send, swap))
    return sent[0]["status"], asked


def test_a_replica_swaps_its_code_only_at_the_clusters_key(monkeypatch):
    monkeypatch.delenv(SWAP_KEY_ENV, raising=False)
    assert _asgi_swap([(SWAP_KEY_HEADER.encode(), b"")]) == (404, [])  # a cluster we did not start: no key
    monkeypatch.setenv(SWAP_KEY_ENV, "the-key")
    assert _asgi_swap([]) == (404, [])
    assert _asgi_swap([(SWAP_KEY_HEADER.encode(), b"a-guess")]) == (404, [])
    assert _asgi_swap([(SWAP_KEY_HEADER.encode(), b"the-key")], method="GET") == (404, [])
    assert _asgi_swap([(SWAP_KEY_HEADER.encode(), b"the-key")]) == (200, ["use abc"])
    assert _asgi_swap([(SWAP_KEY_HEADER.encode(), b"the-key")], query=b"code=abc&step=build") == (200, ["build abc"])
    assert _asgi_swap([(SWAP_KEY_HEADER.encode(), b"the-key")], query=b"code=abc&step=rm") == (404, [])
    assert _asgi_swap([(SWAP_KEY_HEADER.encode(), b"the-key")], query=b"code=broken&step=build") == (422, ["build broken"])


def test_one_replica_takes_whole_connections_once_the_relay_hears_of_it(servers, relay):
    a, _, proxy = servers
    url = f"http://127.0.0.1:{relay.port}"
    with _client() as first:
        assert first.get(url + "/a").text == f"{proxy.port} /a"  # no replica known yet: Serve's proxy
        relay.point_at(DEPLOYMENT, {"aaaa": a.port})
        # A keep-alive connection stays where it started; a new one goes to the replica.
        assert first.get(url + "/b").headers["x-server"] == str(proxy.port)
        with _client() as second:
            assert second.get(url + "/c").text == f"{a.port} /c"
        relay.point_at(DEPLOYMENT, {})
        with _client() as third:
            assert third.get(url + "/d").headers["x-server"] == str(proxy.port)


def test_sessions_stick_to_their_replica_whatever_connection_carries_them(servers, relay):
    a, b, _ = servers
    relay.point_at(DEPLOYMENT, {"aaaa": a.port, "bbbb": b.port})
    url, name = f"http://127.0.0.1:{relay.port}", _cookie(relay)
    homes = {}
    for _ in range(4):  # new sessions take turns
        with _client() as c:
            page = c.get(url + "/config")
            homes[page.cookies[name]] = page.headers["x-server"]
            assert all(c.get(url + f"/gradio_api/queue/data?n={i}").headers["x-server"] == homes[page.cookies[name]]
                       for i in range(3))
    assert sorted(homes.values()) == sorted([str(a.port), str(b.port)] * 2)
    # One keep-alive connection carrying both sessions (a browser's pool): each request finds its own.
    with _client() as shared:
        for cookie, home in list(homes.items()) * 3:
            answer = shared.get(url + "/gradio_api/queue/join", headers={"cookie": f"{name}={cookie}"})
            assert answer.headers["x-server"] == home
        # A POST body does not confuse the next request's routing on the same connection.
        cookie_a = next(c for c, h in homes.items() if h == str(a.port))
        cookie_b = next(c for c, h in homes.items() if h == str(b.port))
        payload = b"x" * 3_000_000
        posted = shared.post(url + "/echo", content=payload, headers={"cookie": f"{name}={cookie_b}"})
        assert posted.content == payload and posted.headers["x-server"] == str(b.port)
        assert shared.get(url + "/after", headers={"cookie": f"{name}={cookie_a}"}).text == f"{a.port} /after"
        # Gradio's REST result is found by its tagged event id, without a cookie.
        assert shared.get(url + "/gradio_api/call/predict/e1~bbbb").text == f"{b.port} /gradio_api/call/predict/e1"


def test_each_request_is_routed_once(servers, relay):
    # Routed again after its connection opened, a new session would count twice and could go elsewhere.
    a, b, _ = servers
    relay.point_at(DEPLOYMENT, {"aaaa": a.port, "bbbb": b.port})
    for _ in range(4):
        with _client() as c:
            c.get(f"http://127.0.0.1:{relay.port}/config")
    assert sorted(len(times) for times in relay.routes._new_sessions.values()) == [2, 2]


def test_a_dead_replicas_session_moves_once_and_stays(servers, relay):
    a, b, proxy = servers
    name = _cookie(relay)
    # A cookie that rendezvous hashing would send to the replacement (cccc) rather than to aaaa.
    cookie = next(f"bbbb.{i:04x}" for i in range(1000) if rendezvous(f"bbbb.{i:04x}", "cccc") > rendezvous(f"bbbb.{i:04x}", "aaaa"))
    relay.point_at(DEPLOYMENT, {"aaaa": a.port, "bbbb": free_loopback_port()})  # bbbb died; not heard yet
    url = f"http://127.0.0.1:{relay.port}"
    with _client() as c:
        assert c.get(url + "/x", headers={"cookie": f"{name}={cookie}"}).headers["x-server"] == str(a.port)
    assert "bbbb" not in relay.replicas  # forgotten at its first refusal
    relay.point_at(DEPLOYMENT, {"aaaa": a.port, "cccc": b.port})  # a replacement joined
    with _client() as c:  # the moved session stays where it landed (its state is there now)
        assert c.get(url + "/y", headers={"cookie": f"{name}={cookie}"}).headers["x-server"] == str(a.port)
    relay.point_at(DEPLOYMENT, {"aaaa": free_loopback_port()})  # no replica answers: Serve's proxy does
    with _client() as c:
        assert c.get(url + "/z").headers["x-server"] == str(proxy.port)


def _wait(pred, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.02)


def _draining(relay, monkeypatch, drain_s: float, idle_s: float) -> tuple[str, str]:
    """The relay drains for `drain_s`, lets go after `idle_s` unused, looks every 0.1 s: (url, cookie name)."""
    monkeypatch.setattr(draining, "CHECK_S", 0.1)
    relay.draining.drain_s, relay.draining.idle_s = drain_s, idle_s
    return f"http://127.0.0.1:{relay.port}", _cookie(relay)


def test_a_replica_scaled_down_keeps_serving_its_sessions_in_use_then_goes(servers, relay, monkeypatch):
    a, b, _ = servers
    url, name = _draining(relay, monkeypatch, drain_s=3.0, idle_s=1.0)
    relay.point_at(DEPLOYMENT, {"aaaa": a.port, "bbbb": b.port})
    on_b, on_a = "bbbb.0001", "aaaa.0002"
    with _client() as c:
        assert c.get(url + "/x", headers={"cookie": f"{name}={on_b}"}).headers["x-server"] == str(b.port)
    relay.point_at(DEPLOYMENT, {"aaaa": a.port}, scaling_down=True)  # Serve stops bbbb: it is held
    _wait(lambda: len(b.server.server_state.tasks) == 1)  # the relay's hold, in flight on bbbb
    with _client() as c:
        for _ in range(3):  # its session is in use: it stays on bbbb, past the idle time
            assert c.get(url + "/y", headers={"cookie": f"{name}={on_b}"}).headers["x-server"] == str(b.port)
            time.sleep(0.5)
        assert c.get(url + "/y", headers={"cookie": f"{name}={on_a}"}).headers["x-server"] == str(a.port)
        assert c.get(url + "/config").headers["x-server"] == str(a.port)  # new sessions go to the live ones
        # Clients cannot hold a replica: the path is the relay's own.
        assert c.get(url + draining.HOLD_PATH, headers={"cookie": f"{name}={on_b}"}).status_code == 404
    _wait(lambda: "bbbb" not in relay.draining.replicas)  # idle for 1 s: let go
    _wait(lambda: not b.server.server_state.tasks)
    with _client() as c:  # its session moves
        assert c.get(url + "/z", headers={"cookie": f"{name}={on_b}"}).headers["x-server"] == str(a.port)


def test_a_session_that_moved_to_a_replica_scaled_down_is_held_there_too(servers, relay, monkeypatch):
    """A session whose own replica died lives on the one it moved to: when that one is scaled down, it is
    held there like the sessions that began on it."""
    a, b, _ = servers
    url, name = _draining(relay, monkeypatch, drain_s=3.0, idle_s=1.0)
    # A dead replica's cookie that rendezvous hashing moves to bbbb, of aaaa and bbbb.
    moved = next(f"dddd.{i:04x}" for i in range(1000) if rendezvous(f"dddd.{i:04x}", "bbbb") > rendezvous(f"dddd.{i:04x}", "aaaa"))
    relay.point_at(DEPLOYMENT, {"aaaa": a.port, "bbbb": b.port})
    with _client() as c:
        assert c.get(url + "/x", headers={"cookie": f"{name}={moved}"}).headers["x-server"] == str(b.port)
        relay.point_at(DEPLOYMENT, {"aaaa": a.port}, scaling_down=True)  # Serve stops bbbb: it is held
        _wait(lambda: "bbbb" in relay.draining.replicas)
        for _ in range(3):  # in use: it stays on bbbb, where its state is
            assert c.get(url + "/y", headers={"cookie": f"{name}={moved}"}).headers["x-server"] == str(b.port)
            time.sleep(0.3)
    _wait(lambda: "bbbb" not in relay.draining.replicas)  # idle for 1 s: let go
    with _client() as c:  # then it moves, once
        assert c.get(url + "/z", headers={"cookie": f"{name}={moved}"}).headers["x-server"] == str(a.port)


def test_only_a_scale_down_in_use_is_held_and_never_past_the_drain(servers, relay, monkeypatch):
    a, b, _ = servers
    url, name = _draining(relay, monkeypatch, drain_s=1.0, idle_s=10.0)
    relay.point_at(DEPLOYMENT, {"aaaa": a.port, "bbbb": b.port})
    relay.point_at(DEPLOYMENT, {"aaaa": a.port}, scaling_down=True)
    assert not relay.draining.replicas  # no session of bbbb was in use: it goes at once
    relay.point_at(DEPLOYMENT, {"aaaa": a.port, "bbbb": b.port})
    with _client() as c:
        c.get(url + "/x", headers={"cookie": f"{name}=bbbb.0003"})
    relay.point_at(DEPLOYMENT, {"aaaa": a.port})  # replaced by a new version: not held
    assert not relay.draining.replicas
    relay.point_at(DEPLOYMENT, {"aaaa": a.port, "cccc": b.port})  # cccc died, and its port is bbbb's now
    with _client() as c:
        c.get(url + "/x", headers={"cookie": f"{name}=cccc.0004"})
    relay.point_at(DEPLOYMENT, {"aaaa": a.port}, scaling_down=True)
    time.sleep(0.5)
    assert not relay.draining.replicas  # bbbb answered that it is not cccc: nothing held
    relay.point_at(DEPLOYMENT, {"aaaa": a.port, "bbbb": b.port})
    with _client() as c:
        c.get(url + "/x", headers={"cookie": f"{name}=bbbb.0003"})
        relay.point_at(DEPLOYMENT, {"aaaa": a.port}, scaling_down=True)
        _wait(lambda: "bbbb" in relay.draining.replicas)
        start = time.monotonic()
        while "bbbb" in relay.draining.replicas:  # in use all along: let go at the drain's end
            assert c.get(url + "/y", headers={"cookie": f"{name}=bbbb.0003"}).status_code == 200
            time.sleep(0.1)
        assert 0.8 < time.monotonic() - start < 6.0  # 1 s, and a busy machine's seconds


def test_large_bodies_both_ways_and_a_stream_arrive_whole(servers, relay):
    a, b, _ = servers
    url = f"http://127.0.0.1:{relay.port}"
    payload = bytes(range(256)) * 40_000  # 10 MB: the relay's flow control pauses and resumes
    for replicas in ({"aaaa": a.port}, {"aaaa": a.port, "bbbb": b.port}):  # whole, then routed
        relay.point_at(DEPLOYMENT, replicas)
        with _client() as client:
            answer = client.post(url + "/echo", content=payload)
            assert answer.content == payload
            chunked = client.post(url + "/echo", content=iter([payload[:5], payload[5:100_000]]))  # no length
            assert chunked.content == payload[:100_000]
            with client.stream("GET", url + "/stream") as stream:
                assert list(stream.iter_lines()) == ["chunk0", "chunk1", "chunk2"]


@pytest.mark.parametrize("routed", [False, True])
def test_a_half_closed_request_still_gets_its_answer(servers, relay, routed):
    a, b, _ = servers
    relay.point_at(DEPLOYMENT, {"aaaa": a.port, "bbbb": b.port} if routed else {"aaaa": a.port})
    with socket.create_connection(("127.0.0.1", relay.port), timeout=10) as sock:
        sock.sendall(b"GET /half HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)  # as `nc -N` does
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200") and b" /half" in answer


def test_a_port_in_use_is_refused_and_stop_frees_the_port(servers):
    proxy = servers[-1]
    with pytest.raises(OSError):
        PortRelay("127.0.0.1", proxy.port, proxy.port, APP).start()
    r = PortRelay("127.0.0.1", free_loopback_port(), proxy.port, APP)
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


def test_every_address_means_ipv4_and_ipv6_alike(servers):
    proxy = servers[-1]
    r = PortRelay("::", free_loopback_port(), proxy.port, APP)  # as `--host ::` asks
    r.start()
    try:
        with _client() as client:
            assert client.get(f"http://127.0.0.1:{r.port}/v4").text == f"{proxy.port} /v4"
            if socket.has_ipv6:
                assert client.get(f"http://[::1]:{r.port}/v6").text == f"{proxy.port} /v6"
    finally:
        r.stop()


class _DyingReplica:
    """Answers one request on a kept-alive connection, then dies as the next one arrives: that
    connection ends unanswered and its port refuses (a replica killed between two requests)."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @staticmethod
    def _read_head(conn: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        return data

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        self._read_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\nx-server: dying\r\n\r\nlive")
        self._read_head(conn)  # the next request has arrived: die
        self.listener.close()
        conn.close()


def test_a_get_that_reached_a_replica_as_it_died_goes_again(servers, relay):
    _, b, _ = servers
    dying = _DyingReplica()
    relay.point_at(DEPLOYMENT, {"aaaa": dying.port, "bbbb": b.port})
    url, name = f"http://127.0.0.1:{relay.port}", _cookie(relay)
    cookie = {"cookie": f"{name}=aaaa.0001"}  # a session of aaaa's
    with _client() as c:
        assert c.get(url + "/first", headers=cookie).text == "live"
        # The same kept-alive connection: aaaa takes the request and ends without answering.
        answer = c.get(url + "/again", headers=cookie)
        assert answer.text == f"{b.port} /again"
    assert "aaaa" not in relay.replicas  # its port refused the second try: forgotten
    dying.thread.join(5)


def test_a_request_that_may_have_run_never_runs_twice(servers, relay):
    # A POST that a replica took and died of (or died while running) would kill or run again on the next.
    _, b, _ = servers
    dying = _DyingReplica()
    relay.point_at(DEPLOYMENT, {"aaaa": dying.port, "bbbb": b.port})
    url, name = f"http://127.0.0.1:{relay.port}", _cookie(relay)
    cookie = {"cookie": f"{name}=aaaa.0001"}
    SEEN.clear()
    with _client() as c:
        assert c.get(url + "/first", headers=cookie).text == "live"
        with pytest.raises(httpx.RemoteProtocolError):  # its connection ends, as aaaa's own would have
            c.post(url + "/echo", content=b"once", headers=cookie)
    assert "/echo" not in SEEN.get(b.port, [])
    dying.thread.join(5)


def _exchange(port: int, data: bytes, timeout: float = 5) -> bytes:
    """Sends raw bytes, returns all that comes back until the server closes (or goes quiet)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return answer


def _status(answer: bytes) -> bytes:
    return answer.split(b"\r\n", 1)[0]


REFUSED = {
    "content-length with transfer-encoding":
        b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /y HTTP/1.1\r\n\r\n",
    "two content-lengths": b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 8\r\n\r\nabcGET /y",
    "a bad chunk size": b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    "a space before the colon": b"GET /x HTTP/1.1\r\nHost : h\r\n\r\n",
    "a folded header": b"GET /x HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n 2\r\n\r\n",
    "bare line feeds": b"GET /x HTTP/1.1\nHost: h\n\n",
    "an unknown method": b"BREW /x HTTP/1.1\r\nHost: h\r\n\r\n",
    "a transfer-encoding not ending in chunked": b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\nab",
}


@pytest.mark.parametrize("routed", [False, True])
@pytest.mark.parametrize("case", list(REFUSED))
def test_what_a_replica_refuses_the_relay_refuses_alike_and_never_passes_on(servers, relay, case, routed):
    a, b, proxy = servers
    relay.point_at(DEPLOYMENT, {"aaaa": a.port, "bbbb": b.port} if routed else {"aaaa": a.port})
    SEEN.clear()
    direct, relayed = _exchange(proxy.port, REFUSED[case]), _exchange(relay.port, REFUSED[case])
    assert _status(direct).startswith(b"HTTP/1.1 4"), direct
    assert relayed.split(b"\r\n\r\n")[1] == direct.split(b"\r\n\r\n")[1] == b"Invalid HTTP request received."
    assert _status(relayed) == _status(direct)
    assert SEEN.get(a.port) is None and SEEN.get(b.port) is None  # no replica saw any of it


class _Spy:
    """A replica that records every byte it is sent and answers nothing."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.received = bytearray()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.listener.accept()
                threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            while chunk := conn.recv(65536):
                self.received += chunk


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_refused_request_is_answered_by_the_relay_and_its_bad_bytes_reach_no_replica(relay, case):
    spy = _Spy()
    relay.point_at(DEPLOYMENT, {"aaaa": spy.port})
    answer = _exchange(relay.port, REFUSED[case], timeout=2)
    assert _status(answer) == b"HTTP/1.1 400 Bad Request"
    # At most a head that was whole and sound went on (a chunked body breaks after it), never what follows.
    assert spy.received.partition(b"\r\n\r\n")[2] == b""
    spy.listener.close()


def test_a_head_over_the_limit_is_refused(servers, relay):
    a, _, _ = servers
    relay.point_at(DEPLOYMENT, {"aaaa": a.port})
    SEEN.clear()
    big = b"GET /big HTTP/1.1\r\nHost: h\r\n" + b"X-A: %s\r\n" % (b"a" * 1000) * 70 + b"\r\n"
    assert _status(_exchange(relay.port, big)) == b"HTTP/1.1 431 Request Header Fields Too Large"
    # One header line that never ends: refused too, not held without end.
    # The relay answers 431 and closes. What the kernel still buffers may hide that from a send for a
    # while on a busy machine, so keep sending only until the socket says the relay answered or closed.
    with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as sock:
        sock.sendall(b"GET /endless HTTP/1.1\r\nX-A: ")
        answer, closed, sent = b"", False, 0
        deadline = time.monotonic() + 20
        while not closed and time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock] if sent < 8 * 1024 * 1024 else [], [], 0.5)
            try:
                if readable:
                    data = sock.recv(65536)
                    answer, closed = answer + data, not data
                elif writable:
                    sent += sock.send(b"a" * 1024)
            except OSError:  # reset: the relay closed with our bytes unread
                closed = True
        assert closed, f"the relay still holds an endless head after {sent} bytes"
        assert not answer or _status(answer) == b"HTTP/1.1 431 Request Header Fields Too Large", answer[:200]
    assert SEEN.get(a.port) is None


def test_a_head_that_does_not_come_in_time_is_dropped(servers, relay, monkeypatch):
    monkeypatch.setattr(port_relay, "HEAD_TIMEOUT_S", 0.3)
    a, b, _ = servers
    relay.point_at(DEPLOYMENT, {"aaaa": a.port, "bbbb": b.port})
    with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as idle, \
            socket.create_connection(("127.0.0.1", relay.port), timeout=5) as slow:
        slow.sendall(b"GET /slowloris HTTP/1.1\r\n")
        started = time.monotonic()
        with _client() as c:  # the others are served meanwhile; an answer may take longer than a head
            assert c.get(f"http://127.0.0.1:{relay.port}/slow").status_code == 200
        for sock in (idle, slow):
            assert sock.recv(1024) == b""  # closed
        assert time.monotonic() - started < 10  # dropped after 0.3 s; a busy machine adds seconds


def test_clients_past_the_cap_are_answered_503(servers, relay, monkeypatch):
    monkeypatch.setattr(port_relay, "MAX_CONNECTIONS", 2)
    url = f"http://127.0.0.1:{relay.port}/"
    held = [socket.create_connection(("127.0.0.1", relay.port), timeout=5) for _ in range(2)]
    deadline = time.monotonic() + 5
    while len(relay.connections) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    with _client() as c:
        busy = c.get(url)
        assert (busy.status_code, busy.text) == (503, "Service Unavailable")
    held.pop().close()
    while len(relay.connections) > 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    with _client() as c:
        assert c.get(url).status_code == 200
    held.pop().close()


def test_a_client_is_not_read_while_its_replica_takes_nothing(servers, relay):
    stalled = socket.create_server(("127.0.0.1", 0))  # accepts, never reads
    relay.point_at(DEPLOYMENT, {"aaaa": stalled.getsockname()[1]})
    with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % (256 << 20))
        sock.settimeout(0.5)
        sent, block = 0, b"x" * 65536
        with contextlib.suppress(TimeoutError):
            while sent < 128 << 20:
                sent += sock.send(block)

        async def held() -> int:  # what the relay holds of this client, read on the relay's own thread
            conn = next(iter(relay.connections))
            return sum(u.transport.get_write_buffer_size() for u in conn.upstreams.values()) + sum(
                len(item) for item in conn.pending if isinstance(item, bytes))

        assert asyncio.run_coroutine_threadsafe(held(), relay._loop).result(5) < 2 << 20
        assert sent < 64 << 20  # the kernel's buffers, not the whole upload
    stalled.close()


def test_a_websocket_reaches_its_sessions_replica(servers, relay):
    from websockets.sync.client import connect

    a, b, _ = servers
    relay.point_at(DEPLOYMENT, {"aaaa": a.port, "bbbb": b.port})
    name = _cookie(relay)
    for replica, server in (("aaaa", a), ("bbbb", b)):
        with connect(f"ws://127.0.0.1:{relay.port}/ws", additional_headers={"cookie": f"{name}={replica}.01"}) as ws:
            for text in ("one", "two"):
                ws.send(text)
                assert ws.recv(timeout=5) == f"{server.port} {text}"
