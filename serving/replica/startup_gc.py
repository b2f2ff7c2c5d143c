"""Python's cyclic garbage collector paused while a replica imports and loads, then what it built frozen.

A replica's start only adds long-lived objects (modules, a model, a Gradio page), yet Python runs a
full collection each time the heap grows by a quarter: six of them while torch and transformers
import and the embedded model loads (2.9 s instead of 1.9 s here), four while Gradio imports
(1.35 s instead of 0.95 s). That CPU is the cold start's critical path on a small machine.
Afterwards `gc.freeze()` moves what was built out of every later collection's way, as Serve does
after a replica's start (its `gc.collect()` then has little left to scan: 0.22 s less for a model
replica). A load leaves a few dozen unreachable objects (78 for the embedded model, no measurable
memory), which the freeze keeps: a fair price.

Frozen objects are never collected, so a model swapped out later (`gradio-serve apply`) would stay
in memory for good through its reference cycles (Serve's own start-up freeze does the same):
`thaw_and_collect()` gives them back to the collector once the old model is let go.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class _Loads:
    """The loads in progress in this process: the last one to end restores the collector."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    depth: int = 0
    was_enabled: bool = False
    freeze: bool = False  # asked by any of them
    collect_first: bool = False


_loads = _Loads()


@contextlib.contextmanager
def collector_paused(freeze: bool = True, collect_first: bool = False) -> Iterator[None]:
    """No automatic collection inside (any thread: the collector is per process), then `gc.freeze()`
    unless `freeze` is False. Freeze a process's start only: a model swapped out later must stay
    collectable, and frozen objects never are. `collect_first`: one full collection before the
    freeze, as Serve does, for code we do not know (a user's app may leave much garbage behind)."""
    with _loads.lock:
        if _loads.depth == 0:
            _loads.was_enabled, _loads.freeze, _loads.collect_first = gc.isenabled(), False, False
            gc.disable()
        _loads.depth += 1
        _loads.freeze |= freeze
        _loads.collect_first |= collect_first
    try:
        yield
    finally:
        with _loads.lock:
            _loads.depth -= 1
            if _loads.depth == 0:
                if _loads.freeze:
                    if _loads.collect_first:
                        gc.collect()
                    gc.freeze()
                if _loads.was_enabled:
                    gc.enable()


def thaw_and_collect(after: threading.Thread | None = None, delay_s: float = 0.0) -> None:
    """Once `after` (the old model's last user) has ended and `delay_s` more have passed: unfreeze
    everything and collect it once, which frees what only reference cycles still held. The pass
    holds the GIL (~0.3 s with torch and two models loaded), so the caller lets the swap's own reply
    and the new model's first answers go first (right after a swap it added ~0.5 s to both here)."""
    if after is not None:
        after.join()
    time.sleep(delay_s)
    with _loads.lock:
        gc.unfreeze()
        gc.collect()
