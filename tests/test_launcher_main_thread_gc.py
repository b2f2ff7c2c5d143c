"""Garbage is collected on the Qt main thread only, never in a worker (launcher.main_thread_gc)."""

from __future__ import annotations

import gc
import threading

import pytest


@pytest.fixture
def collections():
    """Thread ident of each collection that starts while the test runs."""
    seen: list[int] = []

    def record(phase, _info):
        if phase == "start":
            seen.append(threading.get_ident())

    gc.callbacks.append(record)
    yield seen
    gc.callbacks.remove(record)


def _make_cycles_in_a_worker() -> int:
    def churn():
        for _ in range(100_000):
            a: list = []
            a.append(a)

    worker = threading.Thread(target=churn)
    worker.start()
    worker.join()
    return worker.ident


def test_python_alone_collects_in_whatever_thread_allocates(collections):
    # The hazard itself: without the collector a worker thread runs collections.
    assert gc.isenabled()
    worker = _make_cycles_in_a_worker()
    assert worker in collections


def test_the_collector_collects_on_the_main_thread_only(qtbot, collections):
    # qtbot installs MainThreadGC for this test (conftest), as launcher.app.main does.
    assert not gc.isenabled()
    _make_cycles_in_a_worker()
    assert collections == []
    qtbot.waitUntil(lambda: len(collections) > 0, timeout=2000)
    assert set(collections) == {threading.main_thread().ident}
    assert sum(gc.get_count()) < 5_000  # the worker's garbage is gone, not merely postponed


def test_stop_gives_collection_back(qapp):
    from launcher.main_thread_gc import MainThreadGC

    was = gc.isenabled()
    gc.enable()
    collector = MainThreadGC(qapp)
    assert not gc.isenabled()
    collector.stop()
    assert gc.isenabled()
    if not was:
        gc.disable()
