"""Start times side by side with plain Gradio, in the same run: a ratio holds on a noisy machine
where an absolute time does not.

- `plain_first_answer`: `python -m benchmarks.plain_app --mode summarize` (the same model's plain
  app, `demo.launch()`) from the command to its first gradio_client answer; `cold` in run.py
  measures `gradio-serve up` the same way and divides.
- `app_ready`: for each of several apps of tests/apps/, `gradio-serve up --app F` until it said
  ready and its page answers, against `python F` until its page answers; one after the other (never
  both starting at once), the order alternating from app to app.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from benchmarks.common import ARTICLE, PY, ROOT, Group, Up, free_port, gclient, log, wait_http

# Five kinds (the issue asks for at least 5): an Interface, gr.State, a streaming chat, tabs, an
# image pipeline.
APPS = ["text_interface.py", "counter_state.py", "chat_stream.py", "tabs_blocks.py", "image_tools.py"]


def plain_first_answer(env: dict, log_path: Path, model: str) -> float:
    """Seconds from the command to the first answer of the plain summarizer app."""
    port = free_port()
    t0 = time.monotonic()
    plain = Group([PY, "-m", "benchmarks.plain_app", "--mode", "summarize", "--model", model, "--port", str(port)],
                  env, log_path, stdin=False)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_http(url, 300, plain.proc)
        gclient(url).predict(ARTICLE, api_name="/summarize")
        return time.monotonic() - t0
    finally:
        plain.stop(grace=10)


def _ours(app: Path, env: dict, log_path: Path) -> float:
    port = free_port()
    up = Up(["--app", str(app), "--port", str(port)], env, log_path)
    try:
        up.wait_running(300)
        wait_http(f"http://127.0.0.1:{port}/", 60, up.proc)
        return time.monotonic() - up.t0
    finally:
        up.stop()


def _plain(app: Path, env: dict, log_path: Path) -> float:
    port = free_port()
    t0 = time.monotonic()
    plain = Group([PY, str(app)], {**env, "GRADIO_SERVER_PORT": str(port)}, log_path, stdin=False)
    try:
        wait_http(f"http://127.0.0.1:{port}/", 120, plain.proc)
        return time.monotonic() - t0
    finally:
        plain.stop(grace=10)


def app_ready(work: Path, env: dict, rep: int = 0) -> tuple[float, dict]:
    """(ratio of the medians, details): ours until ready and answering vs `python F` until answering."""
    rows = []
    for i, name in enumerate(APPS):
        app = ROOT / "tests" / "apps" / name
        stem = app.stem
        first_ours = (i + rep) % 2 == 0
        runs = {}
        for who in (["ours", "plain"] if first_ours else ["plain", "ours"]):
            measure = _ours if who == "ours" else _plain
            runs[who] = measure(app, env, work / f"ready-{stem}-{who}.log")
        rows.append({"app": f"tests/apps/{name}", "ours_s": round(runs["ours"], 2), "plain_s": round(runs["plain"], 2),
                     "ratio": round(runs["ours"] / runs["plain"], 2)})
        log(f"app ready {name}: ours {runs['ours']:.2f} s, python {runs['plain']:.2f} s")
    ours = statistics.median(r["ours_s"] for r in rows)
    plain = statistics.median(r["plain_s"] for r in rows)
    return ours / plain, {"ours_median_s": round(ours, 2), "plain_median_s": round(plain, 2), "apps": rows,
                          "measured": "`gradio-serve up --app F --port P` (1 replica) until its `running` phase and "
                                      "GET / answers 200, vs `python F` (its own demo.launch(), port from "
                                      "GRADIO_SERVER_PORT) until GET / answers 200; one after the other, order "
                                      "alternating; ratio of the medians over the apps"}
