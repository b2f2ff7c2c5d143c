"""Shared pytest fixtures."""

from __future__ import annotations

import signal

import pytest
from tiny_models import build_tiny_models

# The tests stop `serve run` with Ctrl-C, as a user does. A run started in the background by a
# non-interactive shell (`bash .ci/run &`) inherits SIGINT ignored, and so would every process the
# tests start: `serve run` would never see its Ctrl-C. As from a terminal, then (a handler, unlike
# an ignored signal, is not inherited: the children start with the default).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def tiny_models(request, tmp_path_factory):
    """Tiny random models in a hub cache, served offline by hub id.

    Built once into the pytest cache (``.pytest_cache/d/tiny-models``) so reruns are instant, or a
    session temp dir when the cache plugin is off. Sets HF_HUB_CACHE and HF_HUB_OFFLINE=1 in
    os.environ (inherited by subprocesses) and in huggingface_hub.constants (which reads them once
    at import), restoring both at session end.
    """
    cache = getattr(request.config, "cache", None)
    hub_cache = cache.mkdir("tiny-models") if cache is not None else tmp_path_factory.mktemp("tiny-models")
    kinds = build_tiny_models(hub_cache)

    import huggingface_hub.constants as hf_constants

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_CACHE", str(hub_cache))
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setattr(hf_constants, "HF_HUB_CACHE", str(hub_cache))
        mp.setattr(hf_constants, "HF_HUB_OFFLINE", True)
        yield {**kinds, "hub_cache": str(hub_cache)}


@pytest.fixture(autouse=True)
def qt_garbage_on_main_thread(request):
    """Qt tests collect garbage as the launcher does: on the main thread only (launcher.main_thread_gc).

    Otherwise a worker thread of one test may collect a window left over from an earlier one.
    """
    if not {"qapp", "qtbot"} & set(request.fixturenames):
        yield
        return
    from PySide6.QtCore import QThreadPool

    from launcher.main_thread_gc import MainThreadGC

    collector = MainThreadGC(request.getfixturevalue("qapp"))
    try:
        yield
    finally:
        QThreadPool.globalInstance().waitForDone(30_000)  # no worker left to collect once it is back on
        collector.stop()
        collector.deleteLater()


@pytest.fixture
def serving_env(request, tmp_path):
    """Environment for a supervisor subprocess: its own state/log dirs, a shared model cache."""
    import os

    cache = request.config.cache.mkdir("gradio-serve-cache")  # the converted embedded model, kept across runs
    env = dict(os.environ)
    env.update(
        GRADIO_SERVE_STATE_DIR=str(tmp_path / "state"),
        GRADIO_SERVE_LOG_DIR=str(tmp_path / "logs"),
        GRADIO_SERVE_CACHE_DIR=str(cache),
    )
    return env


@pytest.fixture
def launcher_env(tmp_path, monkeypatch):
    """The launcher's files (settings, state, logs) in this test's temp folder; no error dialog left over."""
    from launcher import errors

    for name in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    for name in ("GRADIO_SERVE_STATE_DIR", "GRADIO_SERVE_LOG_DIR", "GRADIO_SERVE_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)
    errors.set_presenter(None, None)
    errors.last_dialog = None
    yield tmp_path
    errors.set_presenter(None, None)


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium driven by Playwright (its own browser download does not work here)."""
    from pathlib import Path

    from playwright.sync_api import sync_playwright
    from test_browser import CHROMIUM, CHROMIUM_ARGS

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: bash scripts/system-deps.sh test"
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()
