"""The session rules, Serve's session router and the replica's affinity middleware, as units
(serving/sessions.py, serving/sticky.py, serving/gradio_server.py). The whole path, with real replicas, is in tests/test_your_app.py."""

from __future__ import annotations

import asyncio
import pickle
from types import SimpleNamespace

import httpx

from serving.gradio_server import SessionAffinity
from serving.sessions import cookie_name, event_replica, rendezvous, replica_of
from serving.sticky import GradioSessionRouter

APP, DEPLOYMENT = "gradio-serve", "app"


def replica(uid):
    return SimpleNamespace(replica_id=SimpleNamespace(unique_id=uid))


def router() -> GradioSessionRouter:
    r = object.__new__(GradioSessionRouter)  # choose_replicas needs no Serve around it
    r._deployment_id = SimpleNamespace(app_name=APP, name=DEPLOYMENT)
    r.initialize_state()
    return r


def request(path="/", cookie: str | None = None, port=8000):
    """A PendingRequest as the proxy builds it: the ASGI scope, pickled, as the only argument."""
    scope = {"type": "http", "path": path, "server": ("127.0.0.1", port), "headers": []}
    if cookie:
        scope["headers"].append((b"cookie", f"{cookie_name(APP, DEPLOYMENT, scope)}={cookie}".encode()))
    arg = pickle.dumps(SimpleNamespace(asgi_scope=scope))
    return SimpleNamespace(args=[arg], metadata=SimpleNamespace(is_http_request=True),
                           routing_context=SimpleNamespace(should_backoff=False))


def route(r, candidates, req):
    return asyncio.run(r.choose_replicas(candidates, req))


def test_a_session_stays_on_its_replica_and_waits_for_it():
    r, a, b = router(), replica("aaaa"), replica("bbbb")
    req = request(cookie="bbbb.n1")
    assert route(r, [a, b], req) == [[b]]
    assert req.routing_context.should_backoff  # busy: wait for it, do not land elsewhere


def test_a_moved_session_does_not_move_again_when_the_replacement_joins():
    r, survivor = router(), replica("survivor")
    cookie = "dead.n1"
    # A replacement that rendezvous hashing would prefer for this cookie.
    replacement = next(x for x in (replica(f"new{i}") for i in range(1000))
                       if rendezvous(cookie, x.replica_id.unique_id) > rendezvous(cookie, "survivor"))
    assert route(r, [survivor], request(cookie=cookie)) == [[survivor]]
    assert route(r, [survivor, replacement], request(cookie=cookie)) == [[survivor]]


def test_the_sessions_of_a_dead_replica_spread_over_the_survivors():
    r, a, b = router(), replica("aaaa"), replica("bbbb")
    homes = {route(r, [a, b], request(cookie=f"dead.{i:04x}"))[0][0].replica_id.unique_id for i in range(40)}
    assert homes == {"aaaa", "bbbb"}


def test_new_sessions_and_stateless_calls_take_turns_apart():
    r = router()
    replicas = [replica("aaaa"), replica("bbbb"), replica("cccc")]

    def first(path):
        return route(r, replicas, request(path=path))[0][0].replica_id.unique_id

    # Each page load also makes a cookie-less side request: sessions still go round robin.
    sessions = []
    for _ in range(9):
        sessions.append(first("/"))
        first("/favicon.ico")
    assert sorted(sessions) == sorted(["aaaa", "bbbb", "cccc"] * 3)
    assert all(sessions[i] != sessions[i + 1] for i in range(8))
    calls = [first("/gradio_api/run/predict") for _ in range(6)]
    assert sorted(calls) == sorted(["aaaa", "bbbb", "cccc"] * 2)


def test_a_tagged_event_id_finds_its_replica_without_a_cookie():
    r, a, b = router(), replica("aaaa"), replica("bbbb")
    assert route(r, [a, b], request(path="/gradio_api/call/predict/0123abcd~bbbb")) == [[b]]
    assert event_replica("/gradio_api/call/v2/predict/0123~aaaa") == "aaaa"
    assert event_replica("/gradio_api/call/predict") is None


def test_cookie_names_differ_by_port_and_values_carry_a_nonce():
    s1 = {"server": ("127.0.0.1", 8000)}
    s2 = {"server": ("127.0.0.1", 8001)}
    assert cookie_name(APP, DEPLOYMENT, s1) != cookie_name(APP, DEPLOYMENT, s2)
    # The address the client asked for names it, whichever port (Serve's proxy, a replica's own) took it.
    host = [(b"host", b"127.0.0.1:8000")]
    via_proxy, direct = {**s1, "headers": host}, {"server": ("127.0.0.1", 30000), "headers": host}
    assert cookie_name(APP, DEPLOYMENT, via_proxy) == cookie_name(APP, DEPLOYMENT, direct)
    assert cookie_name(APP, DEPLOYMENT, direct) != cookie_name(APP, DEPLOYMENT, {**s1, "headers": [(b"host", b"127.0.0.1:8001")]})
    assert replica_of("aaaa.0f0f") == "aaaa" and replica_of("aaaa") == "aaaa" and replica_of(None) is None


async def _gradio_like(scope, receive, send):
    """Answers like Gradio's POST /call/<api> (an event id) and echoes the path it was asked for."""
    body = b'{"event_id": "e1"}' if scope["method"] == "POST" else scope["path"].encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def test_the_middleware_names_its_replica_tags_events_and_strips_tags():
    app = SessionAffinity(_gradio_like, replica="aaaa", app_name=APP, deployment=DEPLOYMENT)

    async def run():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000") as c:
            side = await c.get("/favicon.ico")  # not where a session starts: no cookie
            name = cookie_name(APP, DEPLOYMENT, {"headers": [(b"host", b"127.0.0.1:8000")]})
            assert name not in side.cookies
            first = await c.get("/config")
            value = first.cookies[name]
            assert replica_of(value) == "aaaa" and value != "aaaa"
            again = await c.get("/config")  # the client sends it back: no new cookie
            assert name not in again.cookies
            posted = await c.post("/gradio_api/call/predict", json={"data": []})
            assert posted.json() == {"event_id": "e1~aaaa"}
            assert int(posted.headers["content-length"]) == len(posted.content)
            fetched = await c.get("/gradio_api/call/predict/e1~aaaa")
            assert fetched.text == "/gradio_api/call/predict/e1"  # Gradio sees its own id

    asyncio.run(run())
