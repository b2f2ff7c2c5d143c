"""The Gradio Blocks for both modes. Built inside the ingress replica.

`ask(text)` is supplied by the ingress: it sends one prompt to every model
deployment at once and returns one result per slot (a dict, or the exception).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no phoning home from a local app

import gradio as gr

from serving.core.config import Mode

log = logging.getLogger("ray.serve")

Ask = Callable[[str], Awaitable[Sequence[object]]]
AskStream = Callable[[str], AsyncIterator[Sequence[object]]]

MAX_INPUT_CHARS = 200_000
# C0/C1 control characters and NUL, except tab and newline: they only confuse tokenizers.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class InputError(ValueError):
    pass


def clean_input(text: object) -> str:
    """What the user typed, made safe to tokenize; raises InputError with what to do."""
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise InputError("The input must be text.")
    if len(text) > MAX_INPUT_CHARS:
        raise InputError(f"The input is {len(text):,} characters; the limit is {MAX_INPUT_CHARS:,}. Shorten it.")
    text = _CONTROL.sub(" ", text).strip()
    if not text:
        raise InputError("Please enter some text first.")
    return text


def describe_failure(exc: BaseException) -> str:
    """A short line for the user; the traceback goes to the replica's log."""
    cause = getattr(exc, "cause", None) or exc  # RayTaskError wraps the model's own exception
    first = (str(cause).strip().splitlines() or [""])[0][:200]
    name = type(cause).__name__
    if "BackPressure" in name or "backpressure" in first.lower():
        return "The model is busy with other requests; try again in a moment."
    return f"The model failed ({name}: {first}). See the server log for details."


def render(result: object) -> tuple[str, str]:
    """(answer text, latency note) for one model's result."""
    if isinstance(result, BaseException):
        log.error("model call failed", exc_info=result)
        return f"⚠ {describe_failure(result)}", "error"
    text = result["text"] or "(the model returned no text)"
    if result.get("truncated_to"):
        text += f"\n\n[Input was longer than the model's context and was cut to {result['truncated_to']} tokens.]"
    return text, f"{result['latency_s']:.2f} s"


def build_blocks(mode: Mode, labels: Sequence[str], ask: Ask, ask_stream: AskStream) -> gr.Blocks:
    """The page streams answers as they are generated; the API endpoints `summarize` and
    `fanout` return whole answers (and batch under load).

    `labels` is read live (the ingress updates it in place when a model is swapped)."""
    if mode is Mode.summarize:
        return _summarizer(labels, ask, ask_stream)
    return _fanout(labels, ask, ask_stream)


def _checked(text: object, title: str) -> str:
    try:
        return clean_input(text)
    except InputError as exc:
        raise gr.Error(str(exc), title=title) from None


def _partial(state: object) -> tuple[str, str]:
    """(text, latency note) for a model that may still be generating."""
    if isinstance(state, dict) and state.get("done") is False:
        return state["text"], "generating…"
    return render(state)


def _summarizer(labels: Sequence[str], ask: Ask, ask_stream: AskStream) -> gr.Blocks:
    def _answer(result: object) -> str:
        if isinstance(result, BaseException):
            log.error("summarize failed", exc_info=result)
            raise gr.Error(describe_failure(result), title="Summarizer error")
        return render(result)[0]

    async def summarize(text: str) -> str:
        (result,) = await ask(_checked(text, "Nothing to summarize"))
        return _answer(result)

    async def summarize_stream(text: str):
        async for (state,) in ask_stream(_checked(text, "Nothing to summarize")):
            yield _partial(state)[0] if isinstance(state, dict) and state.get("done") is False else _answer(state)

    def heading() -> str:
        return f"## Summarizer\nServed by Ray Serve · model: **{labels[0]}**"

    with gr.Blocks(title="Summarizer · Gradio Serve") as demo:
        title = gr.Markdown(heading())
        inp = gr.Textbox(label="Text to summarize", lines=8, placeholder="Paste an article or a paragraph…")
        btn = gr.Button("Summarize", variant="primary")
        out = gr.Textbox(label=f"Summary · {labels[0]}", lines=4, elem_id="answer-0")
        # The model can be swapped while the page is served: each load shows the current one.
        demo.load(lambda: (heading(), gr.Textbox(label=f"Summary · {labels[0]}")), None, [title, out],
                  api_name=False, queue=False)
        btn.click(summarize_stream, inp, out, api_name="summarize_stream")
        inp.submit(summarize_stream, inp, out, api_name=False)
        # The whole-answer endpoint for API clients, on a button nobody sees.
        gr.Button(visible=False).click(summarize, inp, out, api_name="summarize")
    return demo


def _fanout(labels: Sequence[str], ask: Ask, ask_stream: AskStream) -> gr.Blocks:
    def _boxes(states: Sequence[object]) -> tuple:
        boxes = []
        for label, state in zip(labels, states, strict=False):  # one each per model slot; never raise in the page
            answer, note = _partial(state)
            # The box's label carries the latency so each answer says how long it took.
            boxes.append(gr.Textbox(value=answer, label=f"{label} · {note}"))
        return tuple(boxes)

    async def fanout(text: str):
        text = _checked(text, "Nothing to send")
        start = time.perf_counter()
        results = await ask(text)
        log.info("fan-out to %d models took %.2f s", len(results), time.perf_counter() - start)
        return _boxes(results)

    async def fanout_stream(text: str):
        async for states in ask_stream(_checked(text, "Nothing to send")):
            yield _boxes(states)

    with gr.Blocks(title="Parallel fan-out · Gradio Serve") as demo:
        gr.Markdown(
            "## Parallel fan-out\nOne prompt goes to every model at once (Ray Serve deployments); "
            "answers appear side by side as they are generated."
        )
        inp = gr.Textbox(label="Prompt", lines=4, placeholder="Ask something…")
        btn = gr.Button("Send to all models", variant="primary")
        with gr.Row(equal_height=True):
            outs = [gr.Textbox(label=label, lines=8, elem_id=f"answer-{i}") for i, label in enumerate(labels)]
        demo.load(lambda: tuple(gr.Textbox(label=label) for label in labels), None, outs,
                  api_name=False, queue=False)
        btn.click(fanout_stream, inp, outs, api_name="fanout_stream")
        inp.submit(fanout_stream, inp, outs, api_name=False)
        gr.Button(visible=False).click(fanout, inp, outs, api_name="fanout")
    return demo
