"""Run work off the Qt main thread, with callbacks back on it (after Anki's QueryOp).

    QueryOp(parent, work, on_success, on_failure).run()

`work` runs in the global QThreadPool; `on_success(result)` or
`on_failure(exc)` then run on the main thread. If `parent` is gone by then,
the callbacks are skipped (a closed window must not be touched). A failure
with no handler goes through `launcher.errors.show_error`.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

# Ops in flight, so their QObject is not collected before the result arrives.
_pending: set[QueryOp] = set()


class _Runnable(QRunnable):
    def __init__(self, op: QueryOp):
        super().__init__()
        self._op = op

    def run(self) -> None:  # worker thread
        op = self._op
        try:
            result = op._work()
        except BaseException as exc:  # noqa: BLE001 - reported to the main thread, never lost
            exc.__traceback_text__ = traceback.format_exc()  # type: ignore[attr-defined]
            op._failed.emit(exc)
        else:
            op._succeeded.emit(result)


class QueryOp(QObject):
    """One operation: `work()` in a worker thread, callbacks on the main thread."""

    _succeeded = Signal(object)
    _failed = Signal(object)

    def __init__(
        self,
        parent: QObject | None,
        work: Callable[[], Any],
        on_success: Callable[[Any], None] | None = None,
        on_failure: Callable[[BaseException], None] | None = None,
        what: str = "A background task",
    ):
        # No Qt parent: the op must outlive nothing but itself; `parent` is only watched.
        super().__init__()
        self._owner = parent
        self._work = work
        self._on_success = on_success
        self._on_failure = on_failure
        self._what = what
        # Created on the main thread, so these queued slots run there.
        self._succeeded.connect(self._deliver_success)
        self._failed.connect(self._deliver_failure)

    def run(self) -> QueryOp:
        _pending.add(self)
        QThreadPool.globalInstance().start(_Runnable(self))
        return self

    def _owner_alive(self) -> bool:
        return self._owner is None or shiboken6.isValid(self._owner)

    @Slot(object)
    def _deliver_success(self, result: Any) -> None:
        _pending.discard(self)
        if self._on_success is not None and self._owner_alive():
            self._on_success(result)

    @Slot(object)
    def _deliver_failure(self, exc: BaseException) -> None:
        _pending.discard(self)
        if not self._owner_alive():
            return
        if self._on_failure is not None:
            self._on_failure(exc)
            return
        from launcher.errors import show_error

        show_error(
            f"{self._what} failed: {exc}",
            "Try again; if it keeps failing, the log has the details.",
            detail=getattr(exc, "__traceback_text__", repr(exc)),
            dialog=False,
        )


def pending_count() -> int:
    """Operations still waiting for their result (tests wait for 0)."""
    return len(_pending)
