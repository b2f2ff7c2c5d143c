"""The settings' "Let other machines join" switch: cluster.join_address (`gradio-serve up --allow-join`), the
LAN address this machine's Ray head listens on, picked from its non-loopback IPv4 addresses or typed
(IP or IP:PORT). While it runs, the status panel says the command to run on the other machine and the
token file to copy there (launcher/machines_label.py)."""

from __future__ import annotations

import ipaddress

import psutil
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QWidget


def lan_addresses() -> list[str]:
    """This machine's IPv4 addresses other machines may reach (loopback and link-local left out)."""
    found = []
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            try:
                ip = ipaddress.ip_address(a.address)
            except ValueError:
                continue
            if ip.version == 4 and not (ip.is_loopback or ip.is_link_local) and a.address not in found:
                found.append(a.address)
    return found


class JoinRow(QWidget):
    changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.box = QCheckBox("Let other machines join")
        self.box.setToolTip("Other machines add their CPUs and GPUs with `gradio-serve join` and a token this "
                            "machine keeps (Ray listens on the LAN address, with token authentication)")
        self.address = QComboBox()
        self.address.setEditable(True)
        self.address.addItems(lan_addresses())
        self.address.setToolTip("This machine's LAN address (IP or IP:PORT, port 6379 by default)")
        self.address.setEnabled(False)
        self.box.toggled.connect(self._on_toggled)
        self.address.currentTextChanged.connect(lambda _text: self.changed.emit())
        row.addWidget(self.box)
        row.addWidget(self.address, 1)
        self._editable = True

    def join_address(self) -> str | None:
        return (self.address.currentText().strip() or None) if self.box.isChecked() else None

    def set_join_address(self, value: str | None) -> None:
        if value:
            self.address.setCurrentText(value)
        self.box.setChecked(bool(value))

    def set_editable(self, editable: bool) -> None:
        self._editable = editable
        self.box.setEnabled(editable)
        self.address.setEnabled(editable and self.box.isChecked())

    def _on_toggled(self, checked: bool) -> None:
        self.address.setEnabled(checked and self._editable)
        self.changed.emit()
