"""A real browser against the served page: Debian's headless Chromium driven by Playwright.

For both modes: open the page, type a prompt, press the button, see every model's answer;
a screenshot of each is kept in test-artifacts/. An empty prompt shows Gradio's error toast
with our message. Needs `apt-get install chromium` (Playwright's own browser download is not used).
"""

from __future__ import annotations

import contextlib
import os

import pytest
from supervisor_run import ROOT, Up, free_port

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "test-artifacts"
PROMPT = "The Eiffel Tower is a wrought-iron lattice tower in Paris, built from 1887 to 1889."


def _answers(page, n: int, timeout_ms: int = 120_000) -> list[str]:
    # Each answer box's textarea fills in once the prediction completes.
    for i in range(n):
        page.wait_for_function(
            "id => { const t = document.querySelector(`#${id} textarea`); return t && t.value.trim().length > 0; }",
            arg=f"answer-{i}", timeout=timeout_ms,
        )
    return [page.locator(f"#answer-{i} textarea").input_value() for i in range(n)]


@contextlib.contextmanager
def _opened(browser, url: str):
    """(page, the page's script errors) at `url`, in a context of its own, closed after."""
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(url, wait_until="load", timeout=60_000)
        yield page, errors
    finally:
        context.close()


def _run_page(browser, url: str, button: str, n_answers: int, shot: str) -> list[str]:
    with _opened(browser, url) as (page, errors):
        box = page.locator("textarea").first
        box.wait_for(timeout=60_000)

        # Empty input: Gradio's error toast carries our message, and no answer appears.
        page.get_by_role("button", name=button).click()
        toast = page.get_by_text("Please enter some text first.")
        toast.first.wait_for(timeout=60_000)
        page.wait_for_timeout(500)  # let the toast finish sliding in for the screenshot
        page.screenshot(path=str(ARTIFACTS / f"{shot}-empty-error.png"))
        assert page.locator("#answer-0 textarea").input_value() == ""

        box.fill(PROMPT)
        page.get_by_role("button", name=button).click()
        answers = _answers(page, n_answers)
        page.screenshot(path=str(ARTIFACTS / f"{shot}.png"), full_page=True)
        assert not errors, errors
        return answers


def test_summarizer_page_in_chromium(browser, tiny_models, serving_env, tmp_path):
    port = free_port()
    up = Up(["--model", tiny_models["seq2seq"], "--port", str(port)], serving_env, tmp_path / "up.log")
    try:
        running = up.wait_running()
        (summary,) = _run_page(browser, running["url"], "Summarize", 1, "browser-summarize")
        assert summary.strip() and not summary.startswith("⚠"), summary
    finally:
        up.stop()
    assert (ARTIFACTS / "browser-summarize.png").stat().st_size > 10_000


def test_fanout_page_in_chromium(browser, tiny_models, serving_env, tmp_path):
    port = free_port()
    refs = [tiny_models["causal"], tiny_models["seq2seq"]]
    args = ["--mode", "fanout", "--port", str(port), "--num-cpus", "0.5"]
    for ref in refs:
        args += ["--model", ref]
    up = Up(args, serving_env, tmp_path / "up.log")
    try:
        running = up.wait_running()
        answers = _run_page(browser, running["url"], "Send to all models", len(refs), "browser-fanout")
        assert len(answers) == len(refs)
        for answer in answers:
            assert answer.strip() and not answer.startswith("⚠"), answers
    finally:
        up.stop()
    assert (ARTIFACTS / "browser-fanout.png").stat().st_size > 10_000


def test_the_guides_parallel_app_served_by_gradio_serve_in_chromium(browser, tiny_models, serving_env, tmp_path):
    """Ray's guide's own parallel example (a GradioIngress subclass bound to two model deployments, only the
    import changed), served by `gradio-serve up --app` and used in a real browser through the app's port."""
    port = free_port()
    # The file's three deployments ask for a CPU each; this machine has 2 cores.
    up = Up(["--app", str(ROOT / "tests" / "guide" / "demo_parallel.py"), "--cpus", "4", "--port", str(port)],
            serving_env, tmp_path / "up.log")
    try:
        running = up.wait_running()
        with _opened(browser, running["url"]) as (page, errors):
            page.locator("textarea").first.fill("My name is Lewis")
            page.get_by_role("button", name="Submit").click()
            page.wait_for_function("() => [...document.querySelectorAll('textarea')].some("
                                   "t => t.value.includes('[Generated text version 2]'))", timeout=120_000)
            page.screenshot(path=str(ARTIFACTS / "browser-guide-parallel.png"), full_page=True)
            output = page.locator("textarea").nth(1).input_value()
        assert output.startswith("[Generated text version 1]\nMy name is Lewis"), output
        assert not errors, errors
    finally:
        up.stop()
