"""Gradio's multi-request APIs on 2 replicas (serving/front/sessions.py's table), with the app of
tests/apps/api_flows.py served by `gradio-serve up --app ... --replicas 2` once for the module:

(a) without cookies, as curl calls them (a fresh connection and no cookie jar for each request):
    call/<api> then its GET; call/v2/<api> with keyword arguments; gr.State kept over REST by a
    session_hash; queue/join then queue/data (and a streamed answer there); an upload used in a
    call; a file output fetched by its file= URL; a streamed answer over call/<api>. Each flow is
    repeated until both replicas served it.
(b) with cookies: gradio_client sessions (the client keeps the cookie of its first answer).
(c) through the browser: headless Chromium counts, uploads a file, downloads the answer, streams.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from pathlib import Path

import httpx
import pytest
from app_serving import client, in_sessions, serve_app
from gradio_client import handle_file
from test_your_app import Page

pytestmark = pytest.mark.slow

MIN_TRIES, MAX_TRIES = 6, 16  # each flow runs until both replicas served it (random keys: 2**-15 to miss)


@pytest.fixture(scope="module")
def served(request, tmp_path_factory):
    base = tmp_path_factory.mktemp("api-flows")
    env = dict(os.environ)
    env.update(GRADIO_SERVE_STATE_DIR=str(base / "state"), GRADIO_SERVE_LOG_DIR=str(base / "logs"),
               GRADIO_SERVE_CACHE_DIR=str(request.config.cache.mkdir("gradio-serve-cache")))
    app = serve_app("api_flows.py", 2, env, base / "up-logs")
    try:
        assert len(app.pids()) == 2, app.pids()
        # Requests go through the app's port straight to the replicas (serving/front/port_relay.py).
        assert any("now goes straight to the app's 2 Gradio replicas" in e.get("message", "") for e in app.up.events)
        yield app
    finally:
        app.up.stop()


def curl(method: str, url: str, **kw) -> httpx.Response:
    """One request on a connection of its own, no cookie sent or kept: as curl makes it."""
    with httpx.Client(trust_env=False, timeout=30) as c:
        answer = c.request(method, url, **kw)
    assert answer.status_code == 200, (method, url, answer.status_code, answer.text)
    return answer


def call(url: str, api: str, body: dict, v2: bool = False) -> list[tuple[str, object]]:
    """Gradio's curl recipe: POST call[/v2]/<api>, then GET call/<api>/<event id>; its (event, data) in order."""
    posted = curl("POST", f"{url}gradio_api/call/{'v2/' if v2 else ''}{api}", json=body).json()
    assert "~" in posted["event_id"], posted  # tagged with its replica
    stream = curl("GET", f"{url}gradio_api/call/{api}/{posted['event_id']}").text
    events = [block.split("\n", 1) for block in stream.strip().split("\n\n")]
    return [(e.removeprefix("event: "), json.loads(d.removeprefix("data: "))) for e, d in events]


def completed(events: list) -> list:
    assert events[-1][0] == "complete", events
    return events[-1][1]


def pid(text: str) -> int:
    return int(text.rpartition("pid ")[2].rstrip(")"))


def until_both_replicas(served, flow) -> None:
    """Runs flow() -> the pid that served it, until each replica served it (at least MIN_TRIES times)."""
    seen: list[int] = []
    while len(seen) < MIN_TRIES or set(seen) != set(served.pids()):
        assert len(seen) < MAX_TRIES, seen
        seen.append(flow())
        assert seen[-1] in served.pids(), seen


# ---------------------------------------------------------------- (a) without cookies


def test_call_and_call_v2_without_cookies(served):
    url = served.url

    def rest() -> int:
        _, count, by = completed(call(url, "bump", {"data": []}))
        assert count == 1  # no session: each call its own state
        return pid(by)

    def keywords() -> int:
        word = uuid.uuid4().hex[:6]
        (loud,) = completed(call(url, "shout", {"text": word, "times": 2}, v2=True))
        assert loud.startswith(f"{word.upper()} {word.upper()} (pid ")
        return pid(loud)

    until_both_replicas(served, rest)
    until_both_replicas(served, keywords)


def test_state_over_rest_with_a_session_hash_without_cookies(served):
    def session() -> int:
        body = {"data": [], "session_hash": uuid.uuid4().hex}
        answers = [completed(call(served.url, "bump", body)) for _ in range(3)]
        assert [a[1] for a in answers] == [1, 2, 3], answers  # every call found the session's state
        assert len({a[2] for a in answers}) == 1, answers
        return pid(answers[0][2])

    until_both_replicas(served, session)


def queue(url: str, session: str, fn: dict, data: list) -> list[dict]:
    """The queue as Gradio's JS client uses it: POST queue/join, then the session's SSE on queue/data."""
    body = {"data": data, "event_data": None, "fn_index": fn["id"], "trigger_id": fn["targets"][0][0],
            "session_hash": session}
    curl("POST", f"{url}gradio_api/queue/join", json=body)
    messages = []
    with httpx.Client(trust_env=False, timeout=30) as c, \
            c.stream("GET", f"{url}gradio_api/queue/data", params={"session_hash": session}) as stream:
        assert stream.status_code == 200
        for line in stream.iter_lines():
            if line.startswith("data: "):
                messages.append(json.loads(line[6:]))
                if messages[-1]["msg"] in ("close_stream", "unexpected_error"):
                    break
    assert messages[-1]["msg"] == "close_stream", messages
    return messages


def test_queue_join_and_data_without_cookies(served):
    url = served.url
    fns = {d["api_name"]: d for d in curl("GET", f"{url}config").json()["dependencies"]}

    def session() -> int:
        h = uuid.uuid4().hex[:11]  # as Gradio's JS client makes one
        counts = []
        for _ in range(2):
            done = [m for m in queue(url, h, fns["bump"], [None]) if m["msg"] == "process_completed"]
            assert done and done[0]["success"], done
            counts.append(done[0]["output"]["data"][1:])
        (one, by), (two, again) = counts
        assert (one, two, by) == (1, 2, again), counts  # join and data met the session's state twice
        # A streamed answer in the same session.
        messages = queue(url, h, fns["count_up"], [3])
        assert sum(m["msg"] == "process_generating" for m in messages) >= 3, messages  # sent as diffs
        (done,) = [m["output"]["data"][0] for m in messages if m["msg"] == "process_completed"]
        assert done == f"3 of 3; {by}", messages
        return pid(by)

    until_both_replicas(served, session)


def test_upload_then_use_and_the_file_output_without_cookies(served):
    url = served.url

    def upload_and_use() -> int:
        lines = [uuid.uuid4().hex for _ in range(3)]
        files = {"files": ("lines.txt", "\n".join(lines).encode(), "text/plain")}
        (path,) = curl("POST", f"{url}gradio_api/upload", params={"upload_id": uuid.uuid4().hex}, files=files).json()
        # In a session of its own (a random replica), which need not be where the file was uploaded
        # (by its upload_id): Gradio takes any file in its upload folder.
        body = {"data": [{"path": path, "meta": {"_type": "gradio.FileData"}}], "session_hash": uuid.uuid4().hex}
        out, summary = completed(call(url, "reverse_lines", body))
        assert summary.startswith("3 lines; pid "), summary
        # Fetched by its URL from wherever this request lands.
        assert out["url"].endswith(f"/gradio_api/file={out['path']}"), out
        fetched = curl("GET", f"{url}gradio_api/file={out['path']}").text
        assert fetched == "\n".join(reversed(lines)) + "\n"
        return pid(summary)

    until_both_replicas(served, upload_and_use)


def test_a_streamed_answer_without_cookies(served):
    def stream() -> int:
        events = call(served.url, "count_up", {"data": [4]})
        parts = [data[0] for event, data in events if event == "generating"]
        assert [p.split(";")[0] for p in parts] == ["1 of 4", "2 of 4", "3 of 4", "4 of 4"], events
        assert completed(events) == [parts[-1]]
        return pid(parts[0])

    until_both_replicas(served, stream)


# ---------------------------------------------------------------- (b) with cookies (gradio_client)


def client_session(url: str) -> int:
    c = client(url)
    counts = [c.predict(api_name="/bump") for _ in range(3)]
    assert [int(n) for n, _ in counts] == [1, 2, 3], counts
    home = {pid(by) for _, by in counts}
    assert c.predict(text="hey", times=2, api_name="/shout").startswith("HEY HEY (pid ")
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "lines.txt"
        source.write_text("one\ntwo\nthree\n", encoding="utf-8")
        out, summary = c.predict(handle_file(source), api_name="/reverse_lines")  # upload, call, download
    assert Path(out).read_text(encoding="utf-8") == "three\ntwo\none\n"
    job = c.submit(3, api_name="/count_up")
    job.result(timeout=60)
    parts = job.outputs()
    assert [p.split(";")[0] for p in parts] == ["1 of 3", "2 of 3", "3 of 3"], parts
    home |= {pid(summary)} | {pid(p) for p in parts}
    assert len(home) == 1, home  # every request of the session on one replica
    return home.pop()


def test_with_cookies_via_gradio_client(served):
    homes = in_sessions(4, client_session, served.url)
    assert set(homes) == set(served.pids()), homes  # new sessions take turns


# ---------------------------------------------------------------- (c) through the browser


def test_state_upload_download_and_stream_in_chromium(served, browser, tmp_path):
    source = tmp_path / "lines.txt"
    source.write_text("first\nsecond\nthird\n", encoding="utf-8")
    for shot in ("api-flows-1", "api-flows-2"):  # two sessions (browser contexts)
        p = Page(browser, served.url)
        try:
            page = p.page
            for n in (1, 2, 3):
                page.locator("#bump").click()
                p.value_is("#count input", str(n))
            home = pid(page.locator("#served-by textarea").input_value())
            assert home in served.pids()
            page.locator("#upload input[type=file]").set_input_files(str(source))
            page.get_by_role("button", name="Reverse").click()
            page.wait_for_function("() => document.querySelector('#summary textarea')?.value.startsWith('3 lines')",
                                   timeout=30_000)
            assert pid(page.locator("#summary textarea").input_value()) == home
            link = page.locator("#reversed a[href*='file=']").first
            link.wait_for(timeout=30_000)
            assert page.request.get(link.get_attribute("href")).text() == "third\nsecond\nfirst\n"
            page.get_by_role("button", name="Count").click()
            p.value_is("#counted textarea", f"4 of 4; pid {home}")
        finally:
            p.close(shot)
