"""The few figures Ray does not count, recorded in the replicas as Serve's own metrics (ray.serve.metrics
adds the application, deployment and replica tags) and exported through each node's metrics agent with
Ray's, where the supervisor reads them (serving/cluster/prometheus_figures.py):

- tokens a model generated, and the batch it decodes (a model deployment);
- a Gradio event that raised (an app's replica): Gradio answers it inside a 200 stream, so Serve's
  error counter never sees it.

A model's decode loop steps 10-100 times a second: the figures are summed here and handed to Ray at
most every FLUSH_S, so the loop pays a few additions per step.
"""

from __future__ import annotations

import functools
import threading
import time

FLUSH_S = 0.5


class ModelFigures:
    """`step(n)` after each decode step (n rows got one token each; 0 when the loop goes idle), or
    `batch(rows, tokens)` after a whole generate() batch. Thread-safe."""

    def __init__(self):
        from ray.serve import metrics

        self._tokens = metrics.Counter("gradio_serve_generated_tokens", description="Tokens a model generated.")
        self._batch = metrics.Gauge("gradio_serve_batch_size",
                                    description="Rows a model decodes at once: the mean over the last half second.")
        self._lock = threading.Lock()
        self._pending_tokens = 0
        self._steps = 0
        self._rows = 0
        self._flushed = time.monotonic()

    def step(self, rows: int) -> None:
        with self._lock:
            self._pending_tokens += rows
            if rows:
                self._steps += 1
                self._rows += rows
            if rows and time.monotonic() - self._flushed < FLUSH_S:
                return
            self._flush()
            if not rows:
                self._batch.set(0.0)  # idle: no batch in use

    def batch(self, rows: int, tokens: int) -> None:
        with self._lock:
            self._pending_tokens += tokens
            self._steps += 1
            self._rows += rows
            self._flush()

    def _flush(self) -> None:
        if self._pending_tokens:
            self._tokens.inc(self._pending_tokens)
        self._batch.set(self._rows / self._steps if self._steps else 0.0)
        self._pending_tokens = self._steps = self._rows = 0
        self._flushed = time.monotonic()


def count_event_errors(blocks) -> None:
    """Counts each Gradio event of `blocks` that raises (gr.Error included): Blocks.process_api, the one
    call every queued, REST and streamed event goes through, wrapped on this instance."""
    from ray.serve import metrics

    errors = metrics.Counter("gradio_serve_app_errors", description="Gradio events that raised.")
    process_api = blocks.process_api

    @functools.wraps(process_api)
    async def counted(*args, **kwargs):
        try:
            return await process_api(*args, **kwargs)
        except Exception:
            errors.inc()
            raise

    blocks.process_api = counted
