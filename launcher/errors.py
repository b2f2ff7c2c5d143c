"""The one way errors reach the user: what happened and what to do, never a traceback.

`show_error(message, hint, detail=...)` logs the full detail (log view and
launcher.log), puts a short line in the window's status bar and, unless
`dialog=False`, opens a non-modal dialog. Without a QApplication (the
command-line flags) it prints to stderr instead.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable

from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from launcher.logs import launcher_logger

TITLE = "Gradio Serve Launcher"

# The window registers where status lines and dialogs go.
_status_sink: Callable[[str], None] | None = None
_dialog_parent: QWidget | None = None
# Kept so the dialog is not collected while open, and so tests can read it.
last_dialog: QMessageBox | None = None


def set_presenter(status_sink: Callable[[str], None] | None, dialog_parent: QWidget | None) -> None:
    global _status_sink, _dialog_parent
    _status_sink, _dialog_parent = status_sink, dialog_parent


def show_error(message: str, hint: str = "", *, detail: str = "", dialog: bool = True, title: str = TITLE) -> None:
    """Tell the user what happened (`message`) and what to do (`hint`); log `detail`."""
    log = launcher_logger()
    log.error(message + (f" ({hint})" if hint else ""))
    if detail and detail.strip() != message.strip():
        log.error(detail.rstrip())

    if QApplication.instance() is None:
        print(f"error: {message}" + (f"\n  {hint}" if hint else ""), file=sys.stderr)
        return

    if _status_sink is not None:
        with contextlib.suppress(RuntimeError):  # the window is gone
            _status_sink(message + (f" {hint}" if hint else ""))
    if not dialog:
        return

    global last_dialog
    parent = _dialog_parent
    try:
        if parent is not None and not parent.isVisible():
            parent = None  # a hidden window would hide the dialog too (minimized to tray)
    except RuntimeError:
        parent = None
    box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, parent)
    if hint:
        box.setInformativeText(hint)
    if detail:
        box.setDetailedText(detail)
    # Non-modal open(): the event loop (and the supervisor's output) keeps flowing.
    if last_dialog is not None:
        with contextlib.suppress(RuntimeError):
            last_dialog.close()
    last_dialog = box
    box.open()
