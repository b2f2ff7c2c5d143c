"""Time to first token as the page sees it: gradio_client on the streaming endpoint.

Polled with deadlines rather than iterated, so a stuck stream fails the run instead of hanging it.
"""

from __future__ import annotations

import time

from benchmarks.common import gclient


def page_ttft(url: str, text: str, timeout_s: float = 120) -> dict:
    """First non-empty partial answer on /summarize_stream, then the whole answer on /summarize."""
    client = gclient(url)
    t0 = time.monotonic()
    job = client.submit(text, api_name="/summarize_stream")
    first = None
    deadline = t0 + timeout_s
    while not job.done():
        if first is None and any(isinstance(o, str) and o.strip() for o in job.outputs()):
            first = time.monotonic() - t0
        if time.monotonic() > deadline:
            job.cancel()
            raise TimeoutError(f"the streaming answer took over {timeout_s} s")
        time.sleep(0.005)
    job.result(timeout=timeout_s)
    stream_total = time.monotonic() - t0
    updates = len(job.outputs())
    if first is None:
        first = stream_total  # everything arrived at once
    t1 = time.monotonic()
    client.submit(text, api_name="/summarize").result(timeout=timeout_s)
    full = time.monotonic() - t1
    return {"ttft_s": round(first, 4), "stream_total_s": round(stream_total, 3),
            "full_answer_s": round(full, 3), "updates": updates}
