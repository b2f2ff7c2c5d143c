"""Gradio's MCP server on 2 replicas (serving/front/sessions.py's table): tests/apps/mcp_tools.py
(launch(mcp_server=True), two tools that name the process serving them), served by `gradio-serve up
--app ... --replicas 2`, and the same file run as `python mcp_tools.py`, used with the `mcp` client
library as an MCP client (an AI assistant) uses it: no cookies.

- SSE transport: GET mcp/sse, whose first event names messages/?session_id=<id>, then POSTs there. The
  replica that minted the id tags it with its name, so each POST finds the session's replica; several
  sessions at once, over both replicas, through the app's port and through Serve's proxy.
- streamable HTTP (POST mcp/): Gradio runs it stateless, so any replica answers any request.
Both answer as plain Gradio does (the same tools, the same answers). served_by runs where the MCP
session is; add (queued) through Gradio's own loopback client, wherever that client's session is. That
client is made at a replica's first queued call, from the first round's address (the app's port); the
second round's calls come through Serve's proxy, whose Host Gradio passed on to the loopback's joins, which
then lost their session 3 times in 4 (each waited for ever) until the replica kept the loopback's own Host.
"""

from __future__ import annotations

import asyncio
import os
import re

import httpx
import psutil
import pytest
from app_serving import plain_gradio, serve_app
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from benchmarks.common import app_processes

pytestmark = pytest.mark.slow

SESSIONS = 6  # at once; new SSE streams take turns over the replicas
SESSION_TIMEOUT_S = 60  # a POST that misses its session's replica leaves the client waiting: fail instead


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """`python mcp_tools.py`, as its author runs it."""
    with plain_gradio("mcp_tools.py", tmp_path_factory.mktemp("plain-mcp")) as url:
        yield url


@pytest.fixture(scope="module")
def served(request, tmp_path_factory):
    base = tmp_path_factory.mktemp("mcp")
    env = {**os.environ, "GRADIO_SERVE_STATE_DIR": str(base / "state"), "GRADIO_SERVE_LOG_DIR": str(base / "logs"),
           "GRADIO_SERVE_CACHE_DIR": str(request.config.cache.mkdir("gradio-serve-cache"))}
    app = serve_app("mcp_tools.py", 2, env, base / "up-logs")
    try:
        assert len(app.pids()) == 2, app.pids()
        assert any("now goes straight to the app's 2 Gradio replicas" in e.get("message", "") for e in app.up.events)
        yield app
    finally:
        app.up.stop()


def pid(text: str) -> int:
    return int(re.fullmatch(r".* \(pid (\d+)\)", text)[1])


def unpidded(text: str) -> str:
    return re.sub(r" \(pid \d+\)$", "", text)


async def use(session: ClientSession, tag: str) -> dict:
    """initialize, list_tools, and a few tool calls: the tools seen and each call's answer."""
    await session.initialize()
    tools = {t.name: t.inputSchema for t in (await session.list_tools()).tools}
    answers = []
    for i in range(3):
        result = await session.call_tool("served_by", {"text": f"{tag}-{i}"})
        assert not result.isError, result
        answers.append(result.content[0].text)
    result = await session.call_tool("add", {"a": 2, "b": 3.5})
    assert not result.isError, result
    answers.append(result.content[0].text)
    return {"tools": tools, "answers": answers}


async def over_sse(url: str, tag: str) -> dict:
    minted = []  # the session id the endpoint event named
    async with sse_client(url + "gradio_api/mcp/sse", on_session_created=minted.append) as (read, write), \
            ClientSession(read, write) as session:
        return {**await use(session, tag), "session_id": minted[0]}


async def over_http(url: str, tag: str) -> dict:
    async with streamable_http_client(url + "gradio_api/mcp/") as (read, write, _), \
            ClientSession(read, write) as session:
        return await use(session, tag)


def sessions(transport, url: str, n: int = SESSIONS) -> list[dict]:
    """n MCP client sessions at once."""
    async def all_of() -> list[dict]:
        return await asyncio.gather(*(asyncio.wait_for(transport(url, f"s{i}"), SESSION_TIMEOUT_S) for i in range(n)))

    return asyncio.run(all_of())


def check_answers(found: list[dict]) -> None:
    for i, one in enumerate(found):
        assert [unpidded(a) for a in one["answers"]] == [f"s{i}-0", f"s{i}-1", f"s{i}-2", "5.5"], one


def serve_proxy_url(served) -> str:
    """Serve's own proxy (the app's port sends it what it cannot reach itself): its loopback HTTP port."""
    for p in app_processes(served.up.proc.pid):
        try:
            if not " ".join(p.cmdline()).startswith("ray::ProxyActor"):
                continue
            ports = [c.laddr.port for c in p.net_connections("tcp") if c.status == psutil.CONN_LISTEN]
        except psutil.Error:
            continue
        for port in ports:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/-/routes", timeout=5, trust_env=False).status_code == 200:
                    return f"http://127.0.0.1:{port}/"
            except httpx.HTTPError:
                continue
    raise AssertionError("no Serve proxy found")


def test_mcp_over_sse_sessions_keep_their_replica(served, plain):
    expected = sessions(over_sse, plain, 1)[0]
    assert "~" not in expected["session_id"]
    for url in (served.url, serve_proxy_url(served)):  # the app's port, then Serve's proxy
        found = sessions(over_sse, url)
        check_answers(found)
        homes = []
        for one in found:
            assert one["tools"] == expected["tools"]  # the tools plain Gradio lists
            where = {pid(a) for a in one["answers"][:3]}
            assert len(where) == 1, one  # the session's replica ran every call of served_by
            assert pid(one["answers"][3]) in served.pids(), one
            homes += where
        assert set(homes) == set(served.pids()), (url, homes)  # sessions on both replicas
        assert len({one["session_id"].rpartition("~")[2] for one in found}) == 2, found  # tagged by each


def test_mcp_over_streamable_http_on_any_replica(served, plain):
    expected = sessions(over_http, plain, 1)[0]
    found = sessions(over_http, served.url)
    check_answers(found)
    assert all(one["tools"] == expected["tools"] for one in found), found
    # Stateless: each request to the replica whose turn it is.
    assert {pid(a) for one in found for a in one["answers"]} == set(served.pids()), found
