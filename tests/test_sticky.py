"""The session rules, Serve's session router and the replica's affinity middleware, as units
(serving/front/sessions.py, serving/replica/sticky.py, serving/replica/gradio_server.py). The whole path, with real replicas, is in tests/test_your_app.py."""

from __future__ import annotations

import asyncio
import pickle
from types import SimpleNamespace

import httpx

from serving.front import sessions
from serving.front.sessions import SessionRoutes, cookie_name, cookie_value, event_replica, rendezvous, replica_of
from serving.replica.gradio_server import SessionAffinity
from serving.replica.sticky import GradioSessionRouter

APP, DEPLOYMENT = "gradio-serve", "app"


def replica(uid):
    return SimpleNamespace(replica_id=SimpleNamespace(unique_id=uid))


def router() -> GradioSessionRouter:
    r = object.__new__(GradioSessionRouter)  # choose_replicas needs no Serve around it
    r._deployment_id = SimpleNamespace(app_name=APP, name=DEPLOYMENT)
    r.initialize_state()
    return r


def request(path="/", cookie: str | None = None, port=8000, query=b"", headers=(), method="GET"):
    """A PendingRequest as the proxy builds it: the ASGI scope, pickled, as the only argument."""
    scope = {"type": "http", "method": method, "path": path, "server": ("127.0.0.1", port), "headers": list(headers),
             "query_string": query}
    if cookie:
        scope["headers"].append((b"cookie", f"{cookie_name(APP, DEPLOYMENT, scope)}={cookie}".encode()))
    arg = pickle.dumps(SimpleNamespace(asgi_scope=scope))
    return SimpleNamespace(args=[arg], metadata=SimpleNamespace(is_http_request=True),
                           routing_context=SimpleNamespace(should_backoff=False))


def route(r, candidates, req):
    return asyncio.run(r.choose_replicas(candidates, req))


def test_a_session_stays_on_its_replica_and_waits_for_it():
    r, a, b = router(), replica("aaaa"), replica("bbbb")
    req = request(cookie="bbbb.01")
    assert route(r, [a, b], req) == [[b]]
    assert req.routing_context.should_backoff  # busy: wait for it, do not land elsewhere


def test_a_moved_session_does_not_move_again_when_the_replacement_joins():
    r, survivor = router(), replica("survivor")
    cookie = "dead.01"
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
    # The "Use via API" page's submission has a result's shape: it names no replica.
    assert event_replica("/gradio_api/call/v2/pre~bbbb", "POST") is None
    assert event_replica("/gradio_api/call/predict/0123~../..") is None  # not a replica's name


def test_an_mcp_session_id_finds_the_replica_that_minted_it():
    r, a, b = router(), replica("aaaa"), replica("bbbb")
    messages = "/gradio_api/mcp/messages/"
    assert route(r, [a, b], request(messages, query=b"session_id=0f0f~bbbb", method="POST")) == [[b]]
    assert route(r, [a, b], request(messages, query=b"session_id=0f0f%7Eaaaa", method="POST")) == [[a]]
    assert route(r, [a, b], request("/gradio_api/mcp/", headers=[(b"mcp-session-id", b"s1~bbbb")],
                                    method="POST")) == [[b]]
    # Untagged, or tagged with what is no replica's name: not pinned (the cookie, else round robin).
    assert sessions.mcp_replica({"path": messages, "query_string": b"session_id=0f0f", "headers": []}) is None
    assert sessions.mcp_replica({"path": messages, "query_string": b"session_id=0f~../x", "headers": []}) is None
    assert sessions.mcp_replica({"path": "/gradio_api/mcp/sse", "query_string": b"session_id=0f~aaaa",
                                 "headers": []}) is None
    assert not sessions.starts_session({"method": "POST", "path": "/gradio_api/mcp/"})
    assert sessions.starts_session({"method": "GET", "path": "/app/"})


def test_an_odd_cookie_of_another_app_hides_not_ours():
    name = "gradio-serve-0123456789"
    odd = ['prefs={"theme": "dark", "n": 1}', "greeting=hello world", "flag", "név=é", 'q="a;b"']
    for other in odd:
        for header in (f"{other}; {name}=aaaa.0f0f", f"{name}=aaaa.0f0f; {other}"):
            scope = {"headers": [(b"cookie", header.encode("utf-8"))]}
            assert cookie_value(scope, name) == "aaaa.0f0f", header


def test_a_cookie_value_not_of_our_form_is_ignored():
    name = "gradio-serve-0123456789"
    for value in ("aaaa", "aaaa.xyz", "../x.0f", "a" * 100 + ".0f", "", "aaaa.0f x"):
        assert cookie_value({"headers": [(b"cookie", f"{name}={value}".encode())]}, name) is None, value
    # The most specific path's cookie comes first: that one counts.
    both = f"{name}=bbbb.01; {name}=aaaa.02".encode()
    assert cookie_value({"headers": [(b"cookie", both)]}, name) == "bbbb.01"


def test_moved_sessions_are_remembered_within_a_byte_budget(monkeypatch):
    monkeypatch.setattr(sessions, "MAX_MOVED_BYTES", 10_000)
    routes = SessionRoutes()
    cookies = [f"dead{i}.{i:032x}" for i in range(200)]
    for cookie in cookies:
        routes.home(cookie, ["aaaa", "bbbb"])
    kept = routes._moved
    assert sum(len(k) + len(v) + sessions.ENTRY_BYTES for k, v in kept.items()) <= 10_000
    assert 10 < len(kept) < 200 and cookies[-1] in kept and cookies[0] not in kept  # the oldest went


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
    echo = scope["method"] != "POST" or (b"x-echo-path", b"1") in scope["headers"]
    body = scope["path"].encode() if echo else b'{"event_id": "e1"}'
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


def test_the_use_via_api_recipe_finds_its_replica():
    """Gradio's curl recipe: POST .../call/v2/<api>, then GET .../call/<api>/$EVENT_ID (or .../call/v2/...)."""
    app = SessionAffinity(_gradio_like, replica="aaaa", app_name=APP, deployment=DEPLOYMENT)

    async def run():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000") as c:
            posted = await c.post("/gradio_api/call/v2/predict", json={"x": 1})
            assert posted.json() == {"event_id": "e1~aaaa"}
            event = posted.json()["event_id"]
            assert event_replica(f"/gradio_api/call/predict/{event}") == "aaaa"
            assert (await c.get(f"/gradio_api/call/predict/{event}")).text == "/gradio_api/call/predict/e1"
            assert (await c.get(f"/gradio_api/call/v2/predict/{event}")).text == "/gradio_api/call/v2/predict/e1"
            # A submission is no result's fetch: its path reaches Gradio as it was sent.
            seen = await c.post("/gradio_api/call/v2/a~b", json={}, headers={"x-echo-path": "1"})
            assert seen.text == "/gradio_api/call/v2/a~b"

    asyncio.run(run())


async def _mcp_like(scope, receive, send):
    """Answers like Gradio's MCP server: mcp/sse streams its endpoint event (split over two writes, then
    a ping); mcp/ answers an mcp-session-id header; anything else echoes the query and session header."""
    if scope["path"].endswith("/mcp/sse"):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        for part in (b"event: endpoint\r\ndata: /gradio_api/mcp/messages/?session_id=", b"0f0f\r\n\r\n",
                     b": ping - session_id=1\r\n\r\n"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    headers = dict(scope["headers"])
    body = b" ".join([scope["query_string"], headers.get(b"mcp-session-id", b"-"), headers.get(b"cookie", b"-")])
    answer = [(b"mcp-session-id", b"s1")] if scope["path"].endswith("/mcp/") else []
    await send({"type": "http.response.start", "status": 200, "headers": answer})
    await send({"type": "http.response.body", "body": body})


def test_the_middleware_tags_the_mcp_session_ids_it_hands_out_and_strips_them():
    app = SessionAffinity(_mcp_like, replica="aaaa", app_name=APP, deployment=DEPLOYMENT)

    async def run():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000") as c:
            stream = (await c.get("/gradio_api/mcp/sse")).text
            assert stream == ("event: endpoint\r\ndata: /gradio_api/mcp/messages/?session_id=0f0f~aaaa\r\n\r\n"
                              ": ping - session_id=1\r\n\r\n")  # the first only
            for query in ("session_id=0f0f~aaaa", "session_id=0f0f%7Eaaaa", "x=1&session_id=0f0f~aaaa"):
                seen = await c.post(f"/gradio_api/mcp/messages/?{query}")
                assert seen.text == query.replace("~aaaa", "").replace("%7Eaaaa", "") + " - -", seen.text
                assert "set-cookie" not in seen.headers  # MCP's routes start no session (mcp/ ends in "/")
            started = await c.post("/gradio_api/mcp/")
            assert started.headers["mcp-session-id"] == "s1~aaaa" and "set-cookie" not in started.headers
            later = await c.post("/gradio_api/mcp/messages/", headers={"mcp-session-id": "s1~aaaa"})
            assert later.text == " s1 -"  # Gradio sees the id it minted
            assert (await c.post("/gradio_api/mcp/", headers={"mcp-session-id": "s~1.2"})).text == " s~1.2 -"
            # Our cookie stays out of what Gradio's tools pass on to its loopback client; others stay.
            name = cookie_name(APP, DEPLOYMENT, {"headers": [(b"host", b"127.0.0.1:8000")]})
            for cookies, kept in ((f"a=1; {name}=bbbb.0f; b=2", "a=1; b=2"), (f"{name}=bbbb.0f", "-")):
                seen = await c.post("/gradio_api/mcp/", headers={"cookie": cookies})
                assert seen.text == f" - {kept}", seen.text

    asyncio.run(run())


def _set_cookie(app, path="/config", headers=None, scheme="http", root_path=""):
    """The Set-Cookie header the middleware adds to one request's answer."""
    sent = []

    async def run():
        scope = {"type": "http", "method": "GET", "path": path, "scheme": scheme, "root_path": root_path,
                 "headers": [(b"host", b"example.com"), *(headers or [])]}

        async def receive():
            return {"type": "http.request", "body": b""}

        async def send(message):
            sent.append(message)

        await app(scope, receive, send)

    asyncio.run(run())
    return dict(sent[0]["headers"])[b"set-cookie"].decode()


def test_the_cookie_fits_where_the_app_is_served():
    def app(root_path=None):
        return SessionAffinity(_gradio_like, replica="aaaa", app_name=APP, deployment=DEPLOYMENT, root_path=root_path)

    plain = _set_cookie(app())
    assert "; Path=/;" in plain and plain.endswith("SameSite=Lax") and "Secure" not in plain
    # Under https (its own, or a proxy's in front), as in another site's iframe: SameSite=None; Secure.
    for secure in (_set_cookie(app(), scheme="https"),
                   _set_cookie(app(), headers=[(b"x-forwarded-proto", b"https")]),
                   _set_cookie(app("https://example.com/gradio/"))):
        assert secure.endswith("SameSite=None; Secure"), secure
    assert "; Path=/gradio;" in _set_cookie(app("https://example.com/gradio/"))
    assert "; Path=/gradio;" in _set_cookie(app("/gradio"))
    assert "; Path=/served;" in _set_cookie(app(), root_path="/served")


def test_two_apps_under_one_host_at_different_paths_keep_a_cookie_each():
    # A reverse proxy serves one app at /one and another at /two (each with Gradio's root_path set).
    apps = {prefix: SessionAffinity(_gradio_like, replica=replica, app_name=APP, deployment=DEPLOYMENT,
                                    root_path=prefix)
            for prefix, replica in (("/one", "aaaa"), ("/two", "bbbb"))}

    async def proxy(scope, receive, send):
        prefix = "/" + scope["path"].split("/")[1]
        path = scope["path"][len(prefix):] or "/"
        await apps[prefix]({**scope, "path": path, "raw_path": path.encode()}, receive, send)

    async def run():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=proxy), base_url="http://example.com") as c:
            first = await c.get("/one/config")
            assert len(first.headers.get_list("set-cookie")) == 1
            assert len((await c.get("/two/config")).headers.get_list("set-cookie")) == 1
            # The browser (httpx's jar honours Path) sends each app its own: neither sets a new one.
            assert "set-cookie" not in (await c.get("/one/config")).headers
            assert "set-cookie" not in (await c.get("/two/config")).headers

    asyncio.run(run())
