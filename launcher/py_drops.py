"""A .py file dragged onto the window (from a file manager, or an editor's tab) taken as your app."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QMimeData, QObject, Signal
from PySide6.QtWidgets import QWidget


def py_file_from_mime(mime: QMimeData) -> str | None:
    """The first local .py file in a drag (a file manager's or an editor's tab), else None."""
    if mime is None or not mime.hasUrls():
        return None
    for url in mime.urls():
        if url.isLocalFile() and url.toLocalFile().lower().endswith(".py"):
            return url.toLocalFile()
    return None


class PyFileDrops(QObject):
    """Takes a .py file dropped on `widget` or any child of it that leaves the drag alone (an event
    filter: the drag climbs from the child under the cursor), while `accepting()` says yes."""

    dropped = Signal(str)

    def __init__(self, widget: QWidget, accepting: Callable[[], bool]):
        super().__init__(widget)
        self._accepting = accepting
        widget.setAcceptDrops(True)
        widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind not in (QEvent.Type.DragEnter, QEvent.Type.DragMove, QEvent.Type.Drop):
            return False
        path = py_file_from_mime(event.mimeData())
        if not path or not self._accepting():
            return False
        event.acceptProposedAction()
        if kind == QEvent.Type.Drop:
            self.dropped.emit(path)
        return True
