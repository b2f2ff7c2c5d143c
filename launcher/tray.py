"""The tray icon: its look follows the serving state; its menu offers Start, Stop,
Open in browser, Show window, Open logs folder, Quit and "Quit, keep serving".

Qt's systray example: check availability first; where no tray exists (some
desktops, offscreen) this object does nothing and the window behaves accordingly.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from launcher.icons import state_icon

_STATE_WORDS = {
    "stopped": "stopped",
    "starting": "starting…",
    "running": "running",
    "stopping": "stopping…",
    "error": "failed to start",
}


class Tray(QObject):
    activated = Signal()  # a click on the icon: show or hide the window

    def __init__(self, actions: list[QAction | None], parent: QObject | None = None):
        super().__init__(parent)
        self.menu = QMenu()
        for action in actions:
            if action is None:
                self.menu.addSeparator()
            else:
                self.menu.addAction(action)
        self.icon: QSystemTrayIcon | None = None
        if QSystemTrayIcon.isSystemTrayAvailable():
            self.icon = QSystemTrayIcon(state_icon("stopped"), self)
            self.icon.setContextMenu(self.menu)
            self.icon.activated.connect(self._on_activated)
        self.set_state("stopped")

    def available(self) -> bool:
        return self.icon is not None

    def show(self) -> None:
        if self.icon is not None:
            self.icon.show()

    def hide(self) -> None:
        if self.icon is not None:
            self.icon.hide()

    def set_state(self, state: str, url: str | None = None, changing: str | None = None) -> None:
        """`changing`: what a running app is doing meanwhile (e.g. "applying changes…")."""
        self.state = state
        tip = f"Gradio Serve Launcher: {_STATE_WORDS.get(state, state)}"
        if state == "running" and url:
            tip += f" at {url}"
        if state == "running" and changing:
            tip += f", {changing}"
        self.tooltip = tip
        if self.icon is not None:
            # Still serving, but something is changing: the look of starting.
            self.icon.setIcon(state_icon("starting" if changing and state == "running" else state))
            self.icon.setToolTip(tip)

    def message(self, title: str, text: str) -> bool:
        """A balloon message; False where there is no tray to show it."""
        if self.icon is None or not self.icon.isVisible() or not QSystemTrayIcon.supportsMessages():
            return False
        self.icon.showMessage(title, text, state_icon(self.state), 8000)
        return True

    def _on_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (QSystemTrayIcon.ActivationReason.Trigger, QSystemTrayIcon.ActivationReason.DoubleClick):
            self.activated.emit()
