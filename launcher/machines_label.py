"""The status panel's "Machines" lines: each machine of the cluster (address, CPUs, GPUs, memory, the
replicas on it) once there is more than one, and, when other machines may join (cluster.join_address),
the command to run on one and the token file to copy there (from the supervisor record). Hidden
otherwise. Text from serving/core/machines_text.py, as `gradio-serve status` says it."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from serving.core.machines_text import machines_lines
from serving.core.protocol import StatusEvent
from serving.core.records import read_supervisor_record


class MachinesLabel(QLabel):
    def __init__(self, parent=None):
        super().__init__(parent)
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

    def clear(self) -> None:
        self.lines = []
        self.setVisible(False)
