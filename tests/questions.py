"""The question a window asks right now (launcher/dialogs.py), found as a user finds it: the open box."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget

from launcher import errors


def question(window: QWidget) -> QMessageBox | None:
    """The visible question box on `window` (not an error dialog), or None."""
    boxes = [b for b in window.findChildren(QMessageBox) if b.isVisible() and b is not errors.last_dialog]
    return boxes[-1] if boxes else None


def button(box: QMessageBox, text: str):
    """The box's button whose text starts with `text`."""
    return next(b for b in box.buttons() if b.text().startswith(text))
