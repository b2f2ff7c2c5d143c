"""serving/replica/startup_gc.py: no automatic collection while a replica loads, then its start frozen."""

import gc
import threading
import weakref

import pytest

from serving.replica.startup_gc import collector_paused


@pytest.fixture(autouse=True)
def restore_gc():
    was = gc.isenabled()
    yield
    gc.unfreeze()
    (gc.enable if was else gc.disable)()


def _cycles(n: int) -> None:
    for _ in range(n):
        a: list = []
        a.append(a)


def test_no_collection_inside_then_enabled_and_frozen():
    gc.enable()
    gc.unfreeze()
    runs: list[int] = []

    def count(phase, info):
        if phase == "start":
            runs.append(info["generation"])

    gc.callbacks.append(count)
    try:
        with collector_paused():
            assert not gc.isenabled()
            _cycles(50_000)  # with the collector on, this runs many collections (see the control below)
            assert runs == []
            built = [[] for _ in range(1000)]  # what a load builds: long-lived
        assert gc.isenabled()
        assert gc.get_freeze_count() >= len(built), "what was built is frozen"
        _cycles(50_000)
        assert runs, "the collector runs again after the load"
    finally:
        gc.callbacks.remove(count)


def test_without_the_pause_collections_run():
    # The control: the same work with the collector on runs collections, so the test above can fail.
    gc.enable()
    runs: list[int] = []
    gc.callbacks.append(lambda phase, info: runs.append(1) if phase == "start" else None)
    try:
        _cycles(50_000)
    finally:
        gc.callbacks.pop()
    assert runs


def test_no_freeze_when_asked_and_a_disabled_collector_stays_disabled():
    gc.unfreeze()
    gc.disable()
    with collector_paused(freeze=False):
        pass
    assert not gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_nested_and_concurrent_loads_restore_once_at_the_end():
    gc.enable()
    gc.unfreeze()
    inside = threading.Event()
    release = threading.Event()

    def other_load():
        with collector_paused(freeze=False):
            inside.set()
            release.wait(5)

    t = threading.Thread(target=other_load)
    t.start()
    inside.wait(5)
    with collector_paused(freeze=True):
        pass
    assert not gc.isenabled(), "another load is still running: the collector stays off"
    release.set()
    t.join(5)
    assert gc.isenabled()
    assert gc.get_freeze_count() > 0, "one of the loads asked for a freeze"


def test_collect_first_frees_what_the_load_left_unreachable():
    class Node:
        pass

    gc.enable()
    gc.unfreeze()
    with collector_paused(collect_first=True):
        a, b = Node(), Node()
        a.other, b.other = b, a  # a cycle the load leaves behind
        left = weakref.ref(a)
        del a, b
    assert left() is None, "collected before the freeze, not frozen for good"
    with collector_paused():
        a, b = Node(), Node()
        a.other, b.other = b, a
        left = weakref.ref(a)
        del a, b
    assert left() is not None  # the default: frozen with the rest (our own loads leave next to nothing)
