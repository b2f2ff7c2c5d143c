"""Cookie-less clients of Gradio's multi-request APIs (serving/front/sessions.py's table): the app's port
(serving/front/port_relay.py, with uvicorn "replicas" as in tests/test_port_relay.py) and Serve's router
(serving/replica/sticky.py) send every request that names one Gradio session, in its path, query or small
JSON body, to the replica that rendezvous hashing of that key picks. The whole path, with real
Gradio replicas: tests/test_gradio_api_across_replicas.py."""

from __future__ import annotations

import asyncio
import json
import pickle
import random
import socket
import time
import uuid
from types import SimpleNamespace

import httpx
import pytest
from test_port_relay import APP, DEPLOYMENT, _client, _cookie, _exchange, _Server, _status

from serving.core.preflight import free_loopback_port
from serving.front import port_relay
from serving.front.port_relay import PortRelay
from serving.front.sessions import (
    MAX_KEYED_BODY,
    body_session_key,
    keyed_body_length,
    rendezvous,
    session_key,
)
from serving.replica.sticky import GradioSessionRouter

REPLICAS = ("aaaa", "bbbb")


@pytest.fixture(scope="module")
def servers():
    started = [_Server("aaaa"), _Server("bbbb"), _Server()]
    yield started
    for s in started:
        s.stop()


@pytest.fixture
def relay(servers):
    a, b, proxy = servers
    r = PortRelay("127.0.0.1", free_loopback_port(), proxy.port, APP)
    r.start()
    r.point_at(DEPLOYMENT, {"aaaa": a.port, "bbbb": b.port})
    yield r
    r.stop()


def _home(servers, key: str) -> str:
    """The port (as the replicas answer it) of the replica that key hashes to."""
    replica = max(REPLICAS, key=lambda r: rendezvous(key, r))
    return str(servers[REPLICAS.index(replica)].port)


def _join(c: httpx.Client, url: str, session: str, **kw) -> httpx.Response:
    body = {"data": ["hi"], "event_data": None, "fn_index": 0, "trigger_id": 1, "session_hash": session}
    return c.post(url + "/gradio_api/queue/join", json=body, **kw)


def test_a_cookieless_session_finds_one_replica_for_each_of_its_requests(servers, relay):
    url = f"http://127.0.0.1:{relay.port}"
    homes = []
    rng = random.Random(7)
    with _client() as c:  # one keep-alive connection: each request is routed by itself
        assert not c.cookies
        for _ in range(24):
            session = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(11))
            joined = _join(c, url, session)
            home = joined.headers["x-server"]
            assert home == _home(servers, session)
            assert c.get(url + "/gradio_api/queue/data", params={"session_hash": session}).headers["x-server"] == home
            assert c.get(url + f"/gradio_api/heartbeat/{session}").headers["x-server"] == home
            cancel = {"session_hash": session, "fn_index": 0, "event_id": "e1"}
            assert c.post(url + "/gradio_api/cancel", json=cancel).headers["x-server"] == home
            assert c.get(url + f"/gradio_api/stream/{session}/run1/3/playlist.m3u8").headers["x-server"] == home
            # gr.State over REST: a call with a session_hash goes where that session lives.
            called = c.post(url + "/gradio_api/call/bump", json={"data": [], "session_hash": session})
            assert called.headers["x-server"] == home
            homes.append(home)
            # An upload and its progress meet by the upload's id.
            upload = str(uuid.uuid4())
            up = c.post(url + "/gradio_api/upload", params={"upload_id": upload}, files={"files": ("a.txt", b"x")})
            progress = c.get(url + "/gradio_api/upload_progress", params={"upload_id": upload})
            assert up.headers["x-server"] == progress.headers["x-server"] == _home(servers, upload)
    assert set(homes) == {str(s.port) for s in servers[:2]}  # sessions spread over both


def test_our_cookie_wins_over_the_session_hash(servers, relay):
    a, b, _ = servers
    url, name = f"http://127.0.0.1:{relay.port}", _cookie(relay)
    session = next(s for s in (f"s{i}" for i in range(100)) if _home(servers, s) == str(a.port))
    with _client() as c:
        cookie = {"cookie": f"{name}=bbbb.0f0f"}
        assert _join(c, url, session, headers=cookie).headers["x-server"] == str(b.port)
        data = c.get(url + "/gradio_api/queue/data", params={"session_hash": session}, headers=cookie)
        assert data.headers["x-server"] == str(b.port)
        # A tagged event id names its replica whatever the query says.
        result = c.get(url + "/gradio_api/call/bump/e1~bbbb", params={"session_hash": session})
        assert result.headers["x-server"] == str(b.port)


def _raw_join(session: str) -> tuple[bytes, bytes]:
    body = json.dumps({"data": [], "fn_index": 0, "session_hash": session}).encode()
    head = (b"POST /gradio_api/queue/join HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n" % len(body))
    return head, body


def test_a_body_that_routes_its_request_may_come_in_pieces_and_after_its_head(servers, relay):
    session = "pieces0123"
    head, body = _raw_join(session)
    with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as conn:
        conn.sendall(head)
        time.sleep(0.2)
        conn.sendall(body[:7])
        time.sleep(0.2)
        # The rest, and a pipelined request of the same session after it.
        conn.sendall(body[7:] + b"GET /gradio_api/queue/data?session_hash=%s HTTP/1.1\r\nhost: x\r\n\r\n"
                     % session.encode())
        answers = b""
        while b"/gradio_api/queue/data" not in answers and (chunk := conn.recv(65536)):
            answers += chunk  # the second answer's body: both heads are in
    home = _home(servers, session).encode()
    assert answers.count(b"x-server: " + home) == 2, answers


def test_a_routing_body_that_does_not_come_in_time_is_dropped(servers, relay, monkeypatch):
    monkeypatch.setattr(port_relay, "HEAD_TIMEOUT_S", 0.3)
    head, body = _raw_join("late")
    with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as conn:
        conn.sendall(head + body[:5])
        started = time.monotonic()
        assert conn.recv(1024) == b""  # closed, unanswered
        assert time.monotonic() - started < 3


def test_bodies_not_read_for_routing_still_pass_whole(servers, relay):
    """Past MAX_KEYED_BODY, multipart, or chunked: routed by the head alone, and relayed as before."""
    url = f"http://127.0.0.1:{relay.port}"
    with _client() as c:
        big = c.post(url + "/gradio_api/queue/join", json={"data": ["x" * MAX_KEYED_BODY], "session_hash": "s"})
        assert big.status_code == 200
        chunked = c.post(url + "/gradio_api/queue/join", content=iter([b'{"session_hash":', b' "s"}']))
        assert chunked.status_code == 200
    answer = _exchange(relay.port, b"POST /gradio_api/cancel HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n"
                                   b"connection: close\r\n\r\nnot{}")
    assert _status(answer) == b"HTTP/1.1 200 OK"


def test_where_gradio_names_its_session():
    def scope(path, query=b"", method="GET", headers=()):
        return {"method": method, "path": path, "query_string": query, "headers": list(headers)}

    assert session_key(scope("/gradio_api/queue/data", b"session_hash=abc")) == "abc"
    assert session_key(scope("/gradio_api/queue/data", b"session_hash=a&session_hash=b%20c")) == "b c"
    assert session_key(scope("/gradio_api/upload", b"upload_id=u1", "POST")) == "u1"
    assert session_key(scope("/gradio_api/heartbeat/h1")) == "h1"
    assert session_key(scope("/prefix/gradio_api/stream/h2/r/3/seg-1.aac")) == "h2"
    assert session_key(scope("/gradio_api/stream/event1", method="POST")) is None  # an event id: the body says
    assert session_key(scope("/gradio_api/stream/event1/close", method="POST")) is None
    assert session_key(scope("/gradio_api/queue/data", b"session_hash=")) is None
    assert session_key(scope("/")) is None

    json_head = [(b"content-type", b"application/json"), (b"content-length", b"40")]
    assert keyed_body_length(scope("/gradio_api/queue/join", method="POST", headers=json_head)) == 40
    assert keyed_body_length(scope("/gradio_api/run/predict/", method="POST", headers=json_head)) == 40
    assert keyed_body_length(scope("/gradio_api/queue/join", headers=json_head)) == 0  # not a POST
    assert keyed_body_length(scope("/gradio_api/upload", method="POST", headers=json_head)) == 0
    form = [(b"content-type", b"multipart/form-data; boundary=x"), (b"content-length", b"40")]
    assert keyed_body_length(scope("/gradio_api/component_server", method="POST", headers=form)) == 0
    big = [(b"content-length", str(MAX_KEYED_BODY + 1).encode())]
    assert keyed_body_length(scope("/gradio_api/queue/join", method="POST", headers=big)) == 0

    assert body_session_key(b'{"data": [], "session_hash": "s1"}') == "s1"
    assert body_session_key(b'{"session_hash": "s1", "session_hash": "s2"}') == "s2"
    for other in (b'{"session_hash": 3}', b"[1]", b"not json", b'{"data": []}', b'{"session_hash": ""}'):
        assert body_session_key(other) is None


def test_serves_router_hashes_the_keys_it_can_see_as_the_relay_does():
    r = object.__new__(GradioSessionRouter)  # choose_replicas needs no Serve around it
    r._deployment_id = SimpleNamespace(app_name=APP, name=DEPLOYMENT)
    r.initialize_state()
    replicas = [SimpleNamespace(replica_id=SimpleNamespace(unique_id=i)) for i in REPLICAS]

    def chosen(path: str, query: bytes) -> list[list[str]]:
        scope = {"type": "http", "method": "GET", "path": path, "query_string": query, "headers": [],
                 "server": ("127.0.0.1", 8000)}
        req = SimpleNamespace(args=[pickle.dumps(SimpleNamespace(asgi_scope=scope))],
                              metadata=SimpleNamespace(is_http_request=True),
                              routing_context=SimpleNamespace(should_backoff=False))
        ranks = asyncio.run(r.choose_replicas(replicas, req))
        return [[x.replica_id.unique_id for x in rank] for rank in ranks]

    homes = set()
    for i in range(20):
        session = f"session{i}"
        home = max(REPLICAS, key=lambda x, s=session: rendezvous(s, x))
        assert chosen("/gradio_api/queue/data", b"session_hash=" + session.encode()) == [[home]]
        assert chosen(f"/gradio_api/heartbeat/{session}", b"") == [[home]]
        homes.add(home)
    assert homes == set(REPLICAS)
