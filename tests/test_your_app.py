"""Your own Gradio app, served unchanged: `gradio-serve up --app tests/apps/X.py [--replicas 2]`.

Each app in tests/apps is an ordinary Gradio 6 file (`python X.py` runs it too) of one kind:
an Interface, Blocks with Tabs, a streaming ChatInterface, images, files and a Gallery,
gr.State, gr.Progress (built by a function, `progress_app.py:build_demo`), gr.Timer, and an
app with a sibling module and a relative data file. Every one is used through gradio_client
with real inputs and checked outputs, including the text of a gr.Error; on 2 replicas the
checks run in several concurrent sessions. A headless Chromium uses several of them as a
person would. The counter app proves sticky sessions (8 concurrent clients count 1, 2, 3, 4
on both replicas; two browsers keep their own counts) and that a session whose replica is
killed gets answers again.

Tests that share an app and a replica count share one `up` (a module-scoped fixture that
pytest groups them by); one app runs at a time.
"""

from __future__ import annotations

import csv
import io
import os
import random
import signal
import tempfile
import time
from pathlib import Path

import pytest
from app_serving import answer_within, client, in_sessions, rest_call, serve_app
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image
from supervisor_run import ROOT

from serving.core.process_group import pid_alive
from serving.front.sessions import replica_of

pytestmark = pytest.mark.slow

ARTIFACTS = ROOT / "test-artifacts"
RED, BLUE = (255, 0, 0), (0, 0, 255)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def app_env(request, tmp_path_factory):
    """As conftest's serving_env, for the whole module: own state/log dirs."""
    base = tmp_path_factory.mktemp("your-app")
    env = dict(os.environ)
    env.update(GRADIO_SERVE_STATE_DIR=str(base / "state"), GRADIO_SERVE_LOG_DIR=str(base / "logs"),
               GRADIO_SERVE_CACHE_DIR=str(request.config.cache.mkdir("gradio-serve-cache")))
    return env


@pytest.fixture(scope="module")
def served(request, app_env, tmp_path_factory):
    """The app named by the test's `on(...)` mark, running; stopped when the next app is needed."""
    target, replicas = request.param
    app = serve_app(target, replicas, app_env, tmp_path_factory.mktemp("up-logs"))
    try:
        yield app
    finally:
        app.up.stop()


def on(*cases: tuple[str, int]):
    """Run the test against each (app, replicas)."""
    return pytest.mark.parametrize("served", cases, indirect=True, ids=lambda c: f"{c[0].split('.')[0]}-{c[1]}r")


class Page:
    """A fresh browser context on the app's page; fails on uncaught page errors; keeps a screenshot."""

    def __init__(self, browser, url: str):
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.goto(url, wait_until="load", timeout=60_000)
        self.page.locator(".gradio-container").first.wait_for(timeout=60_000)

    def value_is(self, selector: str, expected: str, timeout_ms: int = 30_000) -> None:
        self.page.wait_for_function(
            "([sel, want]) => { const e = document.querySelector(sel); return e && e.value === want; }",
            arg=[selector, expected], timeout=timeout_ms)

    def shows(self, text: str, timeout_ms: int = 30_000) -> None:
        self.page.get_by_text(text).first.wait_for(timeout=timeout_ms)

    def close(self, shot: str | None = None) -> None:
        try:
            if shot:
                ARTIFACTS.mkdir(exist_ok=True)
                self.page.screenshot(path=str(ARTIFACTS / f"your-app-{shot}.png"), full_page=True)
            assert not self.errors, self.errors
        finally:
            self.context.close()


# ---------------------------------------------------------------- (a) gr.Interface, text in/out


def check_slugify(url: str) -> None:
    c = client(url)
    assert c.predict("Crème Brûlée: 10 Tips!", "-", api_name="/slugify") == "creme-brulee-10-tips"
    assert c.predict("Ray Serve + Gradio", "_", api_name="/slugify") == "ray_serve_gradio"
    with pytest.raises(AppError, match="Nothing to slugify: type a title with letters or digits"):
        c.predict("?!  …", "-", api_name="/slugify")


@on(("text_interface.py", 1), ("text_interface.py", 2))
def test_interface_via_client(served):
    in_sessions(2 * served.replicas, check_slugify, served.url)


@on(("text_interface.py", 1))
def test_interface_in_chromium(served, browser):
    p = Page(browser, served.url)
    try:
        p.page.get_by_label("Title").fill("Hello, Wörld 2026")
        p.page.get_by_role("button", name="Submit").click()
        p.page.wait_for_function(
            "() => [...document.querySelectorAll('textarea')].some(t => t.value === 'hello-world-2026')",
            timeout=30_000)
        p.page.get_by_label("Title").fill("!!!")
        p.page.get_by_role("button", name="Submit").click()
        p.shows("Nothing to slugify")
    finally:
        p.close("interface")


# ---------------------------------------------------------------- (b) gr.Blocks with gr.Tabs


def check_tabs(url: str) -> None:
    c = client(url)
    assert c.predict(100, api_name="/to_fahrenheit") == 212
    assert c.predict("The cat and the hat. THE end!", api_name="/word_counts") == {
        "words": 7, "unique": 5, "top": [["the", 3], ["cat", 1], ["and", 1]]}
    assert c.predict(90, 3, 10, api_name="/split_bill") == "33.00 each"
    with pytest.raises(AppError, match="At least one person has to pay"):
        c.predict(90, 0, 10, api_name="/split_bill")


@on(("tabs_blocks.py", 1))
def test_tabs_via_client(served):
    check_tabs(served.url)


@on(("tabs_blocks.py", 1))
def test_tabs_in_chromium(served, browser):
    p = Page(browser, served.url)
    try:
        page = p.page
        page.get_by_role("tab", name="Split the bill").click()
        page.get_by_label("People").fill("4")
        page.get_by_role("button", name="Split").click()
        p.value_is("#share textarea", "24.75 each")
        page.get_by_label("People").fill("0")
        page.get_by_role("button", name="Split").click()
        p.shows("At least one person has to pay.")
        page.get_by_role("tab", name="Temperature").click()
        page.get_by_label("Celsius").fill("100")
        page.get_by_role("button", name="Convert").click()
        p.value_is("#fahrenheit input", "212")
    finally:
        p.close("tabs")


# ---------------------------------------------------------------- (c) streaming gr.ChatInterface


def check_chat(url: str) -> None:
    c = client(url)
    job = c.submit("hello there", api_name="/chat")
    partials = list(job)
    final = "Turn 1: you said 'hello there' (11 characters)."
    assert job.result() == final
    assert partials[-1] == final
    # Streamed: several growing pieces, each the start of the answer.
    assert len(set(partials)) >= 4, partials
    assert all(final.startswith(p) for p in partials), partials
    assert [len(p) for p in partials] == sorted(len(p) for p in partials), partials


@on(("chat_stream.py", 1), ("chat_stream.py", 2))
def test_streaming_chat_via_client(served):
    in_sessions(2 * served.replicas, check_chat, served.url)


@on(("chat_stream.py", 1))
def test_streaming_chat_in_chromium(served, browser):
    p = Page(browser, served.url)
    try:
        box = p.page.get_by_role("textbox").first
        box.fill("hello")
        box.press("Enter")
        p.shows("Turn 1: you said 'hello' (5 characters).")
        box.fill("and again")
        box.press("Enter")
        p.shows("Turn 2: you said 'and again' (9 characters).")  # the history came back to the app
    finally:
        p.close("chat")


# ---------------------------------------------------------------- (d) images in and out


def two_colour_png(folder: Path, size=(8, 4), left=RED, right=BLUE) -> Path:
    image = Image.new("RGB", size, left)
    image.paste(Image.new("RGB", (size[0] // 2, size[1]), right), (size[0] // 2, 0))
    path = folder / "two-colours.png"
    image.save(path)
    return path


def random_colour(rng: random.Random) -> tuple[int, int, int]:
    return rng.randrange(256), rng.randrange(256), rng.randrange(256)


# Gradio 6.31 names an output image after its content and rewrites that file for each call that makes
# the same picture, also while it is being downloaded: concurrent sessions asking for the very same
# image can get a truncated file, on plain Gradio too. So each session here works on its own colours.


def check_images(url: str) -> None:
    c = client(url)
    rng = random.Random()
    left, right = random_colour(rng), random_colour(rng)
    with tempfile.TemporaryDirectory() as tmp:
        source = two_colour_png(Path(tmp), left=left, right=right)
        mirrored = Image.open(c.predict(handle_file(source), "mirror", api_name="/apply_effect")).convert("RGB")
        assert mirrored.size == (8, 4)
        assert mirrored.getpixel((0, 0)) == right and mirrored.getpixel((7, 3)) == left
        gray = Image.open(c.predict(handle_file(source), "grayscale", api_name="/apply_effect")).convert("RGB")
        luma = Image.new("RGB", (1, 1), left).convert("L").getpixel((0, 0))
        assert gray.getpixel((0, 0)) == (luma, luma, luma)
        inverted = Image.open(c.predict(handle_file(source), "invert", api_name="/apply_effect")).convert("RGB")
        assert inverted.getpixel((0, 0)) == tuple(255 - v for v in left)
    with pytest.raises(AppError, match="Upload an image first"):
        c.predict(None, "mirror", api_name="/apply_effect")


@on(("image_tools.py", 1), ("image_tools.py", 2))
def test_images_via_client(served):
    in_sessions(2 * served.replicas, check_images, served.url)


@on(("image_tools.py", 1))
def test_images_in_chromium(served, browser, tmp_path):
    p = Page(browser, served.url)
    try:
        page = p.page
        page.locator("#source input[type=file]").set_input_files(str(two_colour_png(tmp_path, size=(64, 32))))
        page.locator("#source img").first.wait_for(timeout=30_000)
        page.get_by_role("button", name="Apply").click()
        result = page.locator("#result img").first
        result.wait_for(timeout=30_000)
        shown = Image.open(io.BytesIO(page.request.get(result.get_attribute("src")).body())).convert("RGB")
        assert shown.size == (64, 32)
        assert shown.getpixel((0, 0)) == BLUE and shown.getpixel((63, 31)) == RED
    finally:
        p.close("image")


# ---------------------------------------------------------------- (e) files in, a file and a gallery out


def check_files(url: str) -> None:
    c = client(url)
    rng = random.Random()
    last = f"Zed{rng.randrange(10**6)}"  # this session's own row (see check_images)
    with tempfile.TemporaryDirectory() as tmp:
        scores = Path(tmp) / "scores.csv"
        scores.write_text(f"name,score\nGrace,88\n{last},12.5\nAda,97\nLinus,71\n", encoding="utf-8")
        ranked, summary = c.predict(handle_file(scores), api_name="/rank_scores")
        assert summary == "4 rows; top: Ada (97)"
        assert Path(ranked).name == "ranked-scores.csv"
        with open(ranked, newline="", encoding="utf-8") as f:
            assert list(csv.reader(f)) == [["rank", "name", "score"], ["1", "Ada", "97"], ["2", "Grace", "88"],
                                           ["3", "Linus", "71"], ["4", last, "12.5"]]
        wrong = Path(tmp) / "wrong.csv"
        wrong.write_text(f"who,points\n{last},97\n", encoding="utf-8")
        with pytest.raises(AppError, match="The CSV needs a 'name' and a 'score' column"):
            c.predict(handle_file(wrong), api_name="/rank_scores")
    colours = [random_colour(rng) for _ in range(3)]
    names = ["#{:02x}{:02x}{:02x}".format(*rgb) for rgb in colours]
    gallery = c.predict(", ".join(names), api_name="/swatches")
    assert [item["caption"] for item in gallery] == names
    assert [Image.open(item["image"]).convert("RGB").getpixel((5, 5)) for item in gallery] == colours
    with pytest.raises(AppError, match="Unknown colour: blurple"):
        c.predict(f"{names[0]}, blurple", api_name="/swatches")


@on(("file_tools.py", 1), ("file_tools.py", 2))
def test_files_and_gallery_via_client(served):
    in_sessions(2 * served.replicas, check_files, served.url)


# ---------------------------------------------------------------- (f) gr.State, sticky sessions, replica death


def bump(c) -> tuple[int, int]:
    """(count, pid of the replica that answered)."""
    count, served_by = c.predict(api_name="/bump")
    return int(count), int(served_by.removeprefix("pid "))


def counting_session(url: str) -> list[tuple[int, int]]:
    c = client(url)
    return [bump(c) for _ in range(4)]


@on(("counter_state.py", 1))
def test_state_counter_via_client(served):
    (pid,) = served.pids()
    a, b = client(served.url), client(served.url)
    assert [bump(a) for _ in range(3)] == [(1, pid), (2, pid), (3, pid)]
    assert bump(b) == (1, pid)  # another session, its own count
    assert a.predict(api_name="/reset") == (0, f"pid {pid}")
    assert bump(a) == (1, pid)


@on(("counter_state.py", 2))
def test_state_sessions_are_sticky_on_two_replicas(served):
    pids = served.pids()
    assert len(pids) == 2, pids
    # The app's port sends each request straight to its session's replica (not through Serve's proxy).
    assert any("now goes straight to the app's 2 Gradio replicas" in e.get("message", "") for e in served.up.events)
    sessions = in_sessions(8, counting_session, served.url)
    for answers in sessions:
        counts, where = [n for n, _ in answers], {pid for _, pid in answers}
        assert counts == [1, 2, 3, 4], sessions  # no gap, no reset: every call reached its session's replica
        assert len(where) == 1, sessions
    assert {answers[0][1] for answers in sessions} == set(pids), sessions  # both replicas took sessions
    # Calls without a session (REST, no cookie) spread over both replicas; each finds its result.
    answers = [rest_call(served.url, "bump", []) for _ in range(6)]
    assert [a[1] for a in answers] == [1] * 6, answers
    assert {int(a[2].removeprefix("pid ")) for a in answers} == set(pids), answers


@on(("counter_state.py", 2))
def test_state_in_two_browsers_on_two_replicas(served, browser):
    pages = [Page(browser, served.url), Page(browser, served.url)]
    try:
        clicks = [0, 0]
        for who in (0, 1, 0, 0, 1, 0):  # interleaved: 4 clicks in one, 2 in the other
            pages[who].page.locator("#bump").click()
            clicks[who] += 1
            pages[who].value_is("#count input", str(clicks[who]))
        for p, n in zip(pages, clicks, strict=True):
            p.value_is("#count input", str(n))  # the other browser's clicks did not count here
            served_by = p.page.locator("#served-by textarea").input_value()
            assert int(served_by.removeprefix("pid ")) in served.pids(), served_by
    finally:
        pages[1].close()
        pages[0].close("state-two-browsers")


@on(("counter_state.py", 2))
def test_session_answers_again_after_its_replica_is_killed(served):
    before = served.pids()
    assert len(before) == 2, before
    # One session on each replica (new sessions go to the replica that took the fewest lately).
    by_pid: dict[int, object] = {}
    for _ in range(20):
        c = client(served.url)
        by_pid.setdefault(bump(c)[1], c)
        if len(by_pid) == 2:
            break
    assert set(by_pid) == set(before), by_pid
    victim, survivor = before
    doomed, other = by_pid[victim], by_pid[survivor]
    assert bump(doomed) == (2, victim)

    killed = kill_and_wait(victim)
    failures: list[str] = []
    while True:
        try:
            count, pid = bump_within(doomed, 20)
            break
        except Exception as exc:  # noqa: BLE001 - recorded, and bounded by the deadline
            failures.append(f"{time.monotonic() - killed:.1f}s {type(exc).__name__}: {exc}"[:300])
            assert time.monotonic() - killed < 60, failures
            time.sleep(1)
    recovered = time.monotonic() - killed
    assert pid != victim and count in (1, 3), (count, pid)  # a fresh state on a live replica
    assert recovered < 30, (recovered, failures)
    assert bump_within(doomed, 20) == (count + 1, pid)  # and it sticks there
    assert bump_within(other, 20) == (2, survivor)  # the other replica's session kept its count
    assert bump_within(client(served.url), 20)[0] == 1  # new sessions work
    assert not failures, failures

    deadline = time.monotonic() + 90  # and Serve replaces the dead replica
    while time.monotonic() < deadline and not (len(served.pids()) == 2 and victim not in served.pids()):
        time.sleep(1)
    assert len(served.pids()) == 2 and victim not in served.pids(), served.pids()
    # The moved session stays where it landed when the replacement joins (gradio_client keeps the
    # dead replica's cookie): its count goes on, no second reset.
    time.sleep(3)  # the proxy's router has heard of the new replica
    assert [bump_within(doomed, 20) for _ in range(3)] == [(count + 2 + i, pid) for i in range(3)]


@on(("counter_state.py", 2))
def test_page_keeps_working_after_its_replica_is_killed(served, browser):
    pids = served.pids()
    assert len(pids) == 2, pids
    pages: dict[int, Page] = {}
    try:
        # One page on each replica. New sessions go to the replica that took the fewest lately, so
        # after the earlier tests' sessions a few may land on the same one before the other's turn.
        for _ in range(20):
            p = Page(browser, served.url)
            p.page.locator("#bump").click()
            p.value_is("#count input", "1")
            pid = int(p.page.locator("#served-by textarea").input_value().removeprefix("pid "))
            if pid in pages:
                p.close()
                continue
            pages[pid] = p
            if len(pages) == 2:
                break
        assert set(pages) == set(pids), list(pages)
        victim, survivor = pids
        doomed, other = pages[victim], pages[survivor]

        doomed.page.locator("#bump").click()
        doomed.value_is("#count input", "2")
        kill_and_wait(victim)
        doomed.page.locator("#bump").click()
        doomed.value_is("#count input", "1")  # a fresh state on the live replica, without reloading the page
        assert doomed.page.locator("#served-by textarea").input_value() == f"pid {survivor}"
        doomed.page.locator("#bump").click()
        doomed.value_is("#count input", "2")
        other.page.locator("#bump").click()
        other.value_is("#count input", "2")  # the other page kept its count
        assert other.page.locator("#served-by textarea").input_value() == f"pid {survivor}"
        for p in (doomed, other):
            assert p.page.get_by_test_id("toast-body").count() == 0, p.page.get_by_test_id("toast-body").all_inner_texts()
    finally:
        for pid, p in pages.items():
            p.close("replica-killed" if pid == pids[0] else None)


def kill_and_wait(pid: int) -> float:
    """SIGKILL a replica, then wait until it is dead (its sockets closed); when it was killed. A request
    sent while it dies may reach it and be cut: the app's port never sends a POST twice (it may have
    run), so that call fails, as with one server. tests/test_chaos.py covers calls that race a kill."""
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    while pid_alive(pid) and time.monotonic() - killed < 10:
        time.sleep(0.02)
    return killed


def home(c) -> str:
    """The replica a gradio_client session is pinned to: its affinity cookie names it (`<replica>.<nonce>`)."""
    return ",".join(sorted(replica_of(v) for k, v in c.cookies.items() if k.startswith("gradio-serve-")))


def bump_within(c, seconds: float) -> tuple[int, int]:
    count, served_by = answer_within(c.submit(api_name="/bump"), seconds)
    return int(count), int(served_by.removeprefix("pid "))


# ---------------------------------------------------------------- (g) gr.Progress, app from a builder


def check_progress(url: str) -> None:
    c = client(url)
    job = c.submit(1000, api_name="/count_primes")
    seen = []
    deadline = time.monotonic() + 60
    while not job.done() and time.monotonic() < deadline:
        progress = job.status().progress_data
        if progress:
            seen.append((progress[0].desc, progress[0].index, progress[0].length))
        time.sleep(0.02)
    assert job.result(timeout=5) == "168 primes up to 1000"
    assert {desc for desc, _, _ in seen} == {"Sieving"}, seen
    assert {length for _, _, length in seen} == {10}, seen
    assert len({index for _, index, _ in seen}) >= 3, seen  # it moved while we watched
    with pytest.raises(AppError, match="Pick a number between 2 and 200000"):
        c.predict(1, api_name="/count_primes")


@on(("progress_app.py:build_demo", 1), ("progress_app.py:build_demo", 2))
def test_progress_from_a_builder_via_client(served):
    in_sessions(served.replicas, check_progress, served.url)


@on(("progress_app.py:build_demo", 2))
def test_calls_in_flight_on_a_killed_replica_end_and_their_sessions_answer_again(served):
    pids = served.pids()
    assert len(pids) == 2, pids
    sessions = [client(served.url) for _ in range(4)]  # new sessions alternate between the replicas
    jobs = [c.submit(200_000, api_name="/count_primes") for c in sessions]  # ten steps of >= 0.1 s
    # Each replica runs one call at a time (Gradio's default concurrency) and queues the other.
    running: set[str] = set()
    deadline = time.monotonic() + 30
    while len(running) < 2:  # a call running on each replica
        assert time.monotonic() < deadline and not any(job.done() for job in jobs), [j.status() for j in jobs]
        running |= {home(c) for c, job in zip(sessions, jobs, strict=True) if job.status().progress_data}
        time.sleep(0.02)
    os.kill(pids[0], signal.SIGKILL)
    outcomes: dict[str, list[str]] = {}  # replica (the session's cookie) -> how its calls ended
    for c, job in zip(sessions, jobs, strict=True):
        try:
            outcome = answer_within(job, 60)
        except TimeoutError:
            raise AssertionError(f"a call hung after its replica was killed: {outcomes}") from None
        except Exception as exc:  # noqa: BLE001 - cut off with its replica: it must end, not hang
            outcome = f"cut off ({type(exc).__name__})"
        outcomes.setdefault(home(c), []).append(outcome)
    # The calls on the live replica finished; those on the killed one ended without an answer.
    assert len(outcomes) == 2, outcomes
    done = "17984 primes up to 200000"
    assert sorted(set(v) == {done} for v in outcomes.values()) == [False, True], outcomes
    assert not any(done in v for v in outcomes.values() if set(v) != {done}), outcomes
    for c in sessions:  # and every session answers again
        assert answer_within(c.submit(100, api_name="/count_primes"), 30) == "25 primes up to 100"


# ---------------------------------------------------------------- (h) gr.Timer


@on(("timer_app.py", 1))
def test_timer_tick_via_client(served):
    a, b = client(served.url), client(served.url)
    assert [a.predict(api_name="/tick") for _ in range(3)] == ["1 ticks", "2 ticks", "3 ticks"]
    assert b.predict(api_name="/tick") == "1 ticks"


@on(("timer_app.py", 1))
def test_timer_ticks_in_chromium(served, browser):
    p = Page(browser, served.url)
    try:
        page = p.page

        def ticks() -> int:
            return int(page.locator("#ticks textarea").input_value().split()[0])

        page.wait_for_function("() => parseInt(document.querySelector('#ticks textarea')?.value) >= 4",
                               timeout=30_000)
        page.get_by_role("button", name="Pause").click()
        page.wait_for_timeout(1000)  # a tick already on its way may still land
        paused = ticks()
        page.wait_for_timeout(2000)
        assert ticks() == paused
        page.get_by_role("button", name="Resume").click()
        page.wait_for_function("n => parseInt(document.querySelector('#ticks textarea')?.value) >= n + 2",
                               arg=paused, timeout=30_000)
    finally:
        p.close("timer")


# ---------------------------------------------------------------- a sibling module and a relative data file


@on(("glossary/demo.py", 1))
def test_sibling_import_and_relative_data_file(served):
    c = client(served.url)
    assert c.predict("Replica", api_name="/define") == "replica: One copy of a deployment running in its own process."
    assert c.predict("sticky session", api_name="/define") == (
        "sticky session: Every request of one session reaches the same replica.")
    with pytest.raises(AppError, match=r"Unknown term 'gpu'\. Try one of: ingress, replica, sticky session\."):
        c.predict("gpu", api_name="/define")
