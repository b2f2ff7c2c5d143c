"""The status panel's "Machines" lines: each machine of the cluster (address, CPUs, GPUs, memory, the
replicas on it) once there is more than one, and, when other machines may join (cluster.join_address),
the command to run on one and the token file to copy there (from the supervisor record). Hidden
otherwise. Text from serving/core/machines_text.py, as `gradio-serve status` says it. A machine that
goes is signalled (`went`): the window says it in a tray message."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel

from serving.core.machines_text import machines_lines
from serving.core.protocol import StatusEvent
from serving.core.records import read_supervisor_record


class MachinesLabel(QLabel):
    went = Signal(str)  # a machine other than the head that was there at the last status and is not now

    def __init__(self, parent=None):
        super().__init__(parent)
        self._others: set[str] = set()
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)  # the join command, to copy
        self.lines: list[str] = []
        self.setVisible(False)

    def show_machines(self, event: StatusEvent) -> None:
        record = read_supervisor_record()  # one small file, on a status change only
        self.lines = machines_lines(event.machines, event.deployments,
                                    record.join_command if record else None, record.token_file if record else None)
        self.setText("<b>Machines</b><br>" + "<br>".join(html.escape(line) for line in self.lines))
        self.setVisible(bool(self.lines))
        if event.machines:  # a status without the machines read says nothing of them
            now = {m.address for m in event.machines if not m.head and m.alive}
            for address in sorted(self._others - now):
                self.went.emit(address)
            self._others = now

    def clear(self) -> None:
        self.lines = []
        self._others = set()  # the app stopped: its machines did not leave
        self.setVisible(False)
