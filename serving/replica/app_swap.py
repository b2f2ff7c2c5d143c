"""Reload on save, inside a replica: the app's new code swapped into the running replica.

On our own cluster the supervisor (serving/cluster/reloader.py) asks this replica on its own port to
build the saved code's app (its error goes back: that is the save's check), then to use it; elsewhere it
checks the save in a child process and redeploys with a new code stamp in the deployment's user_config,
and Serve calls `reconfigure()` on every replica (the deployment's version is pinned, so nothing
restarts). Either way Serve's reconfigure reaches each new replica. Here the app's modules
are imported anew and the ASGI app this replica serves is swapped: ~0.2 s, where a new replica takes
seconds. A replica never stops serving meanwhile: the old app answers until the new one is ready, and
if the new code fails here after all, the old one goes on (and the error is logged).

The swapped app is built as the first one (GradioIngress's `_gradio_asgi_app`), so SessionAffinity stays
around it and sessions keep their replica. Gradio keeps a session's state in the app that served it:
events already running finish on the old app; a page's next request reaches the new one, which does not
know its session, so an open tab is reloaded to go on (as after Gradio's own reload of a changed layout).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

from serving.ray_private import swap_asgi_app

log = logging.getLogger("ray.serve")

# The old app's queue and lifespan end this long after a swap: events it runs finish first.
OLD_APP_GRACE_S = 60.0
# A build of saved code that takes longer (an import that waits on something) is given up; the lock goes.
BUILD_TIMEOUT_S = 60.0


class CodeSwap:
    """A mixin for an ingress that serves a user's file (ServedApp): needs `_gradio_asgi_app()` and
    `_app_folder()`. user_config: {"code": stamp, "files": {relative path: text}}; the files come only
    where the replicas run in a copy of the app's folder (a cluster's working_dir)."""

    _code = ""  # the stamp this replica serves; "" is the code it started with
    _built: tuple[str, object] | None = None  # (stamp, app) built ahead, while the supervisor checks the save
    _swapping: asyncio.Lock | None = None

    async def reconfigure(self, config: dict | None) -> None:
        await self._swap((config or {}).get("code", ""), (config or {}).get("files") or {})

    async def swap_now(self, stamp: str, step: str = "use") -> dict:
        """The supervisor's direct ask (SWAP_PATH, serving/replica/gradio_server.py), from the app's folder
        this replica shares: "build" the saved code's app (the save's check: its error, file and line, come
        back), then "use" it once every replica built it. Serve's reconfigure with the same stamp then finds
        it done. {"ok": bool, "error": ..., "hint": ...}."""
        if step == "build":
            return await self._build_ahead(stamp)
        return {"ok": await self._swap(stamp, {})}

    async def _build_ahead(self, stamp: str) -> dict:
        async with self._lock():
            self._built = None
            try:
                self._built = (stamp, await asyncio.wait_for(asyncio.to_thread(self._rebuild, {}), BUILD_TIMEOUT_S))
            except TimeoutError:
                return {"ok": False, "error": f"importing the app took more than {BUILD_TIMEOUT_S:g} s",
                        "hint": "does the app wait for input or a server at import time?"}
            except Exception as exc:  # noqa: BLE001 - the user's code: told to the supervisor, which says it
                hint = getattr(exc, "hint", None)  # AppLoadError: file, line and fix already in its text
                return {"ok": False, "error": str(exc) if hint is not None else f"{type(exc).__name__}: {exc}",
                        "hint": hint or ""}
        return {"ok": True}

    def _lock(self) -> asyncio.Lock:
        if self._swapping is None:
            self._swapping = asyncio.Lock()
        return self._swapping

    async def _swap(self, stamp: str, files: dict[str, str]) -> bool:
        async with self._lock():  # the direct ask and Serve's reconfigure of one save: swapped once
            if stamp == self._code:
                return True
            started = time.monotonic()
            built, self._built = self._built, None
            try:
                app = built[1] if built and built[0] == stamp else await asyncio.to_thread(self._rebuild, files)
                old = await swap_asgi_app(self, app)
            except Exception as exc:  # noqa: BLE001 - the user's code: the running version goes on
                log.error("reload %s failed, the previous version keeps serving: %s: %s", stamp,
                          type(exc).__name__, exc)
                return False
            self._code = stamp
        log.info("reloaded the app (%s) in %.2f s", stamp, time.monotonic() - started)
        if old is not None:
            asyncio.get_running_loop().call_later(OLD_APP_GRACE_S, lambda: asyncio.ensure_future(_end(old)))
        return True

    def _rebuild(self, files: dict[str, str]):
        folder = self._app_folder()
        write_files(folder, files)
        forget_modules(folder)
        # Fresh bytecode: a save within the same second and of the same size would else reuse a stale .pyc.
        with tempfile.TemporaryDirectory(prefix="gradio-serve-pyc-") as pyc, _pycache_prefix(pyc):
            return self._gradio_asgi_app()


def write_files(folder: Path, files: dict[str, str]) -> None:
    """The saved files, written into this replica's copy of the app's folder (atomically: replicas on one
    machine share the copy)."""
    root = folder.resolve()
    for relative, text in files.items():
        path = (root / relative).resolve()
        if root not in path.parents:
            raise ValueError(f"{relative!r} is outside the app's folder")
        with contextlib.suppress(OSError):
            if path.read_text(encoding="utf-8") == text:
                continue
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)


def forget_modules(folder: Path) -> list[str]:
    """Drop the modules imported from the app's folder (the app and its sibling modules, not packages
    installed there), so that the next import reads them anew."""
    root = str(folder.resolve()) + os.sep
    gone = []
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file and os.path.abspath(file).startswith(root) and not _installed(file):
            del sys.modules[name]
            gone.append(name)
    importlib.invalidate_caches()
    return gone


def _installed(file: str) -> bool:
    return any(part in ("site-packages", "dist-packages") for part in Path(file).parts)


@contextlib.contextmanager
def _pycache_prefix(path: str):
    before = sys.pycache_prefix
    sys.pycache_prefix = path
    try:
        yield
    finally:
        sys.pycache_prefix = before


async def _end(lifespan) -> None:
    with contextlib.suppress(Exception):
        await lifespan.shutdown()
