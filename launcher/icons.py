"""The app icon and the tray's state icons.

SVGs from resources/icons (installed: launcher/resources/icons; from a
checkout: the repository's resources/icons). Where a file is missing, a
coloured dot is drawn instead, so a partial install never breaks the tray.
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap

_HERE = Path(__file__).resolve().parent
_SEARCH = tuple(
    p
    for p in (
        Path(sys._MEIPASS) / "resources" / "icons" if hasattr(sys, "_MEIPASS") else None,  # PyInstaller build
        _HERE / "resources" / "icons",  # installed package data
        _HERE.parent / "resources" / "icons",  # source checkout
    )
    if p is not None
)

STATE_COLOURS = {
    "stopped": "#9ca3af",
    "starting": "#f59e0b",
    "stopping": "#f59e0b",
    "running": "#22c55e",
    "error": "#ef4444",
}
# Stopping looks like starting: something is changing.
_STATE_FILES = {"stopping": "tray-starting.svg"}


def icon_file(name: str) -> Path | None:
    for folder in _SEARCH:
        path = folder / name
        if path.is_file():
            return path
    return None


def dot_icon(colour: str) -> QIcon:
    icon = QIcon()
    for size in (16, 22, 24, 32, 48, 64):
        pixmap = QPixmap(size, size)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QColor(0, 0, 0, 90))
        painter.setBrush(QColor(colour))
        margin = max(1.0, size / 8)
        painter.drawEllipse(QRectF(margin, margin, size - 2 * margin, size - 2 * margin))
        painter.end()
        icon.addPixmap(pixmap)
    return icon


def _from_file(name: str) -> QIcon | None:
    path = icon_file(name)
    if path is None:
        return None
    icon = QIcon(str(path))
    return None if icon.isNull() else icon


@cache
def state_icon(state: str) -> QIcon:
    return _from_file(_STATE_FILES.get(state, f"tray-{state}.svg")) or dot_icon(STATE_COLOURS.get(state, "#9ca3af"))


@cache
def app_icon() -> QIcon:
    return _from_file("gradio-serve-launcher.svg") or dot_icon("#2b9bff")
