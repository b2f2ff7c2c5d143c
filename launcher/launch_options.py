"""The launcher's own options beside the port: open the browser when ready, start at login.

They are not part of the launch configuration: "Open browser when ready" is a setting (or,
with --no-browser, this session's choice only), "Start at login" is the autostart entry
(launcher/desktop_entry.py), changed at once and put back if that fails.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QWidget

from launcher.errors import show_error
from launcher.logs import launcher_logger


class LaunchOptions(QWidget):
    open_browser_changed = Signal(bool)

    def __init__(self, open_browser: bool):
        super().__init__()
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.open_browser_box = QCheckBox("Open browser when ready")
        self.open_browser_box.setChecked(open_browser)
        self.open_browser_box.toggled.connect(self.open_browser_changed)
        row.addWidget(self.open_browser_box)
        self.autostart_box = QCheckBox("Start at login")
        self.autostart_serve_box = QCheckBox("and start serving")
        row.addWidget(self.autostart_box)
        row.addWidget(self.autostart_serve_box)
        self._init_autostart()

    def _init_autostart(self) -> None:
        try:
            from launcher import desktop_entry  # the other half of desktop integration; may be absent

            enabled = bool(desktop_entry.autostart_enabled())
            serve = bool(getattr(desktop_entry, "autostart_starts_serving", lambda: False)())
        except Exception as exc:  # noqa: BLE001 - a missing or broken module only disables the box
            launcher_logger().info("start at login is unavailable: %s", exc)
            for box in (self.autostart_box, self.autostart_serve_box):
                box.setEnabled(False)
                box.setToolTip("Desktop integration is not available in this installation")
            return
        self.autostart_box.setChecked(enabled)
        self.autostart_serve_box.setChecked(serve)
        self.autostart_serve_box.setEnabled(enabled)
        self.autostart_box.setToolTip("Start the launcher (in the tray) when you log in")
        self.autostart_serve_box.setToolTip("Also start serving with these settings at login")
        self.autostart_box.toggled.connect(self._on_autostart_toggled)
        self.autostart_serve_box.toggled.connect(self._on_autostart_toggled)

    def _on_autostart_toggled(self, _checked: bool) -> None:
        enabled, serve = self.autostart_box.isChecked(), self.autostart_serve_box.isChecked()
        self.autostart_serve_box.setEnabled(enabled)
        try:
            from launcher import desktop_entry

            desktop_entry.set_autostart(enabled, serve)
        except Exception as exc:  # noqa: BLE001 - reported, and the box shows the real state
            show_error(
                f"Could not change Start at login: {exc}",
                "Check that ~/.config/autostart is writable, then try again.",
                detail=repr(exc),
            )
            for box, value in ((self.autostart_box, not enabled), (self.autostart_serve_box, False)):
                box.blockSignals(True)
                box.setChecked(value)
                box.blockSignals(False)
