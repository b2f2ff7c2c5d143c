"""`GradioServer` and `GradioIngress`: Ray's Gradio integration, working on Gradio 6.

A drop-in for `ray.serve.gradio_integrations`, whose app answers 500 on Gradio 6:

    from serving import GradioServer
    app = GradioServer.options(num_replicas=2, ray_actor_options={"num_cpus": 1}).bind(builder)

    from serving import GradioIngress
    @serve.deployment
    class MyGradioServer(GradioIngress):
        def __init__(self, d1, d2):
            self._d1, self._d2 = d1, d2
            super().__init__(lambda: gr.Interface(self.fanout, "textbox", "textbox"))

What differs from Ray's, and why:
- The builder is called in `__serve_build_asgi_app__`, inside the replica, and the app is
  mounted with `gr.mount_gradio_app` (Ray's `routes.App.create_app` skips the set-up that
  Gradio 6 needs). Nothing of Gradio is pickled.
- Several replicas work: `GradioServer` routes each session to one replica
  (serving/replica/sticky.py) and each replica names itself in a cookie. A subclass gets the same
  by adding `request_router_config=session_router_config()` to its `@serve.deployment`
  (`gradio-serve up --app` adds it for you).
- A Gradio page holds several streams open; Serve's default of 5 ongoing requests per
  replica would make a third tab wait, so `GradioServer` allows 1000.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
from collections.abc import Awaitable, Callable
from urllib.parse import quote, urlsplit

from ray import serve

from serving.front.sessions import (
    CALL_RESULT,
    CALL_SUBMIT,
    EVENT_TAG,
    HOLD_PATH,
    MCP_MESSAGES,
    MCP_PATH,
    MCP_SESSION_HEADER,
    MCP_SSE,
    RESULT_METHODS,
    SWAP_KEY_ENV,
    SWAP_KEY_HEADER,
    SWAP_PATH,
    cookie_name,
    cookie_value,
    new_cookie_value,
    replica_of,
    starts_session,
    tag_of,
)
from serving.ray_private import asgi_app_wrapper
from serving.replica.serve_figures import count_event_errors
from serving.replica.startup_gc import collector_paused
from serving.replica.sticky import session_router_config

log = logging.getLogger("ray.serve")

ASGIAppReplicaWrapper = asgi_app_wrapper()  # what Serve treats as an ASGI ingress (a private class)

MAX_ONGOING_REQUESTS = 1000
# The MCP SSE stream's `endpoint` event: its session id is tagged with the replica (sessions.py).
MCP_ENDPOINT = re.compile(rb"(data: [^\r\n]*[?&]session_id=[0-9A-Za-z_-]{1,64})(\r?\n)")
MAX_ENDPOINT_SEARCH = 64 * 1024  # bytes of the stream looked through for it
# A tag in a query (`~` or its %7E) to strip: `session_id=<id>~<replica>`.
MCP_QUERY_TAG = re.compile(rb"((?:^|&)session_id=[^&~%]*)(?:~|%7[eE])[A-Za-z0-9_-]{1,64}(?=&|$)")


class SessionAffinity:
    """ASGI middleware in each replica: the cookie that pins a session here, and tagged event ids.

    The cookie is scoped where the app is served: its Path is the app's root path (Gradio's
    `root_path`, where a reverse proxy serves it, else the ASGI root path), so two apps under one
    host at different paths keep a cookie each. Its name does not hold the root path: the app's
    port (serving/front/port_relay.py) reads the name from a request head, which does not carry it.
    Under https it is `SameSite=None; Secure`, as Gradio's own login cookie, so the app also
    keeps its sessions inside another site's iframe; plain http keeps `SameSite=Lax`."""

    def __init__(self, app, replica: str, app_name: str, deployment: str, root_path: str | None = None,
                 swap: Callable[[str, str], Awaitable[dict]] | None = None):
        self.app, self.replica, self.swap = app, replica, swap
        self.app_name, self.deployment = app_name, deployment
        # Gradio's root_path is a path or a whole URL (https://host/path): its path, and its scheme.
        parts = urlsplit(root_path or "")
        self.root_path, self.https = parts.path.rstrip("/"), parts.scheme == "https"

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope.get("path") == HOLD_PATH:
            return await _hold(scope, receive, send, self.replica)
        if scope.get("path") == SWAP_PATH:
            return await _swap(scope, send, self.swap)
        name = cookie_name(self.app_name, self.deployment, scope)
        held = replica_of(cookie_value(scope, name))
        path = scope.get("path", "")
        mcp = MCP_PATH.search(path) is not None
        # A session starts at its entry (page, config, login); a cookie naming another replica moved here.
        needs_cookie = not mcp and held != self.replica and (held is not None or starts_session(scope))
        result = CALL_RESULT.search(path) if scope.get("method") in RESULT_METHODS else None
        if result and EVENT_TAG in result[1]:  # a tagged event id: Gradio knows the plain one
            plain = result[1].rpartition(EVENT_TAG)[0]
            path = path[:result.start(1)] + plain + path[result.end(1):]
            scope = {**scope, "path": path, "raw_path": path.encode()}
        tag_event = scope.get("method") == "POST" and CALL_SUBMIT.search(path) is not None
        if mcp:
            scope = _mcp_untagged(scope, name)
        if not needs_cookie and not tag_event and not mcp:
            return await self.app(scope, receive, send)
        cookie = f"{name}={new_cookie_value(self.replica)}; {self._attributes(scope)}".encode()
        start: dict | None = None
        body = bytearray()
        endpoint: bytearray | None = None  # the MCP SSE stream's head, until its endpoint event is tagged

        async def send_wrapper(message):
            nonlocal start, endpoint
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if needs_cookie:
                    headers.append((b"set-cookie", cookie))
                if mcp:
                    tag = (EVENT_TAG + self.replica).encode()
                    headers = [(k, v + tag if k.lower() == MCP_SESSION_HEADER and v else v) for k, v in headers]
                    if scope.get("method") == "GET" and MCP_SSE.search(path) and message.get("status") == 200:
                        endpoint = bytearray()
                message = {**message, "headers": headers}
                if tag_event and message.get("status") == 200:
                    start = message  # sent with the rewritten body
                    return
            elif message["type"] == "http.response.body" and endpoint is not None:
                endpoint.extend(message.get("body", b""))
                tag = (EVENT_TAG + self.replica).encode()
                tagged, found = MCP_ENDPOINT.subn(lambda m: m[1] + tag + m[2], bytes(endpoint), count=1)
                if not found and message.get("more_body") and len(endpoint) < MAX_ENDPOINT_SEARCH:
                    return  # the event is not whole yet
                endpoint = None
                message = {**message, "body": tagged}
            elif message["type"] == "http.response.body" and start is not None:
                body.extend(message.get("body", b""))
                if message.get("more_body"):
                    return
                message = {**message, "body": self._tagged(bytes(body))}
                headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(message["body"])).encode()))
                await send({**start, "headers": headers})
            await send(message)

        await self.app(scope, receive, send_wrapper)

    def _attributes(self, scope) -> str:
        path = quote(self.root_path or scope.get("root_path", "").rstrip("/") or "/", safe="/:@!$&'()*+,=-._~%")
        forwarded = next((v for k, v in scope.get("headers") or () if k.lower() == b"x-forwarded-proto"), b"")
        https = self.https or scope.get("scheme") == "https" or forwarded.split(b",")[0].strip().lower() == b"https"
        return f"Path={path}; HttpOnly; " + ("SameSite=None; Secure" if https else "SameSite=Lax")

    def _tagged(self, body: bytes) -> bytes:
        try:
            answer = json.loads(body)
        except ValueError:
            return body
        if isinstance(answer, dict) and isinstance(answer.get("event_id"), str):
            answer["event_id"] += EVENT_TAG + self.replica
            return json.dumps(answer).encode()
        return body


def _mcp_untagged(scope: dict, cookie: str) -> dict:
    """The request as Gradio's MCP server knows it: the session id it minted, without our tag, and without
    our cookie: a tool call passes the request's headers on to Gradio's loopback client, whose own session
    (its own cookie) may be on another replica."""
    query = scope.get("query_string") or b""
    if MCP_MESSAGES.search(scope.get("path", "")) and b"session_id=" in query:
        scope = {**scope, "query_string": MCP_QUERY_TAG.sub(rb"\1", query)}
    headers = []
    for key, value in scope.get("headers") or ():
        name = key.lower()
        if name == MCP_SESSION_HEADER and tag_of(value.decode("latin-1")):
            value = value.rpartition(EVENT_TAG.encode())[0]
        elif name == b"cookie":
            pairs = [p for p in value.decode("latin-1").split(";") if p.partition("=")[0].strip() != cookie]
            value = ";".join(pairs).strip().encode("latin-1")
            if not value:
                continue
        headers.append((key, value))
    return {**scope, "headers": headers}


def _mcp_loopback_keeps_its_host(blocks) -> None:
    """Gradio's MCP server runs a queued tool through its loopback client, passing on the MCP request's
    headers, its Host too. Our cookie's name follows the Host (serving/front/sessions.py), so a join with
    the MCP client's Host (Serve's proxy, say) was routed apart from the loopback client's own stream,
    which then waited for ever. The loopback's requests keep their own Host, as with `python demo.py`."""
    server = getattr(blocks, "mcp_server_obj", None)
    prepare = getattr(server, "_prepare_tool_call_args", None)
    if prepare is None:
        return

    def prepared(name, arguments):
        endpoint, args, headers, block_fn = prepare(name, arguments)
        return endpoint, args, {k: v for k, v in headers.items() if k.lower() != "host"}, block_fn

    server._prepare_tool_call_args = prepared


async def _hold(scope, receive, send, me: str) -> None:
    """A request that lasts until its client (the app's port) leaves: while it is in flight Serve's
    drain keeps this replica serving the sessions it holds (serving/front/draining.py). It names the
    replica it means (a dead one's port may be another's now): another answers 404 at once."""
    if scope.get("query_string", b"").decode("latin-1") != f"replica={me}":
        await send({"type": "http.response.start", "status": 404, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})  # held: the app's port may route here
    await send({"type": "http.response.body", "body": b"", "more_body": True})
    while (await receive())["type"] != "http.disconnect":
        pass
    await send({"type": "http.response.body", "body": b""})


async def _swap(scope, send, swap) -> None:
    """The supervisor's reload, straight to this replica: `POST SWAP_PATH?code=<stamp>&step=build` with the
    cluster's key builds the saved code's app (422 with its error when it fails), `step=use` swaps it in,
    where Serve's reconfigure of every replica takes longer. 404 without the key (a cluster we did not
    start has none), so it is no way in for anyone else."""
    from urllib.parse import parse_qs

    key = os.environ.get(SWAP_KEY_ENV, "").encode()
    given = next((v for k, v in scope.get("headers") or () if k.lower() == SWAP_KEY_HEADER.encode()), b"")
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    stamp, step = (query.get("code") or [""])[0], (query.get("step") or ["use"])[0]
    if (swap is None or not key or not hmac.compare_digest(given, key) or scope.get("method") != "POST" or not stamp
            or step not in ("build", "use")):
        status, body = 404, b""
    else:
        answer = await swap(stamp, step)
        status, body = (200 if answer["ok"] else 422), json.dumps(answer).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class GradioIngress(ASGIAppReplicaWrapper):
    """Serves the Gradio app that `builder()` returns; subclass it to hold deployment handles."""

    def __init__(self, builder: Callable[[], object], *, mount_kwargs: dict | None = None):
        """builder: no arguments, returns a gr.Blocks (Interface, ChatInterface, ...); called in the replica."""
        self._gradio_builder = builder
        self._gradio_mount_kwargs = dict(mount_kwargs or {})
        super().__init__(None)  # late-bound: Serve calls __serve_build_asgi_app__ next

    def __serve_build_asgi_app__(self):
        os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
        # Importing Gradio and the app: ~0.4 s less (serving/replica/startup_gc.py). The app is code we do not know:
        # what it left unreachable is collected before the freeze.
        with collector_paused(collect_first=True):
            return self._gradio_asgi_app()

    def _gradio_asgi_app(self):
        """The builder's app, mounted, in SessionAffinity (also what a reload swaps in: serving/replica/app_swap.py)."""
        import gradio as gr
        from fastapi import FastAPI

        blocks = self._gradio_builder()
        if not isinstance(blocks, gr.Blocks):
            raise TypeError(f"the Gradio builder returned {type(blocks).__name__}, not a gr.Blocks "
                            "(gr.Interface, gr.ChatInterface and gr.Blocks all are)")
        count_event_errors(blocks)  # Gradio answers an error with 200: counted for the status (#22)
        # launch()'s default, not mount_gradio_app's: an exception's text (paths, secrets) stays hidden.
        kwargs = {"show_error": False, **self._gradio_mount_kwargs}
        app = gr.mount_gradio_app(FastAPI(), blocks, path="/", **kwargs)
        _mcp_loopback_keeps_its_host(blocks)
        context = serve.get_replica_context()
        # The session cookie's Path is where the app is served (Gradio's root_path: --root-path or the app's own).
        app.add_middleware(SessionAffinity, replica=context.replica_id.unique_id, app_name=context.app_name,
                           deployment=context.deployment, root_path=getattr(blocks, "root_path", None) or None,
                           swap=getattr(self, "swap_now", None))
        return app


GradioServer = serve.deployment(
    max_ongoing_requests=MAX_ONGOING_REQUESTS, request_router_config=session_router_config(),
)(GradioIngress)
GradioServer.__doc__ = "GradioIngress as a deployment: `GradioServer.bind(builder)` (Ray's API, sticky sessions)."
