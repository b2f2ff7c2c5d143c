"""The status of the app (its phase line and a per-deployment table) above the log, resizable.

The table is filled from the supervisor's "status" events.
Columns: model, Serve status (Serve's own words), replicas running/target,
message. The ingress (Gradio) deployment is listed too: it is what answers.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHeaderView,
    QLabel,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from launcher.charts import MetricsCharts
from launcher.log_view import LogView
from launcher.machines_label import MachinesLabel
from serving.core.protocol import StatusEvent

_STATUS_COLOURS = {
    "RUNNING": "#15803d",
    "HEALTHY": "#15803d",
    "DEPLOYING": "#b45309",
    "UPDATING": "#b45309",
    "UPSCALING": "#b45309",
    "DOWNSCALING": "#b45309",
    "NOT_STARTED": "#6b7280",
    "UNHEALTHY": "#b91c1c",
    "DEPLOY_FAILED": "#b91c1c",
}

COLUMNS = ("Model", "Status", "Replicas", "Message")


class StatusTable(QTableWidget):
    def __init__(self, parent=None):
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(COLUMNS)
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.setMinimumHeight(90)
        self.charts = MetricsCharts()  # under the table (StatusAndLog places it): the last minutes, live
        self.machines = MachinesLabel()  # under the table (StatusAndLog places it): each machine, when several

    def show_status(self, event: StatusEvent) -> None:
        self.machines.show_machines(event)
        deployments = event.deployments
        self.setRowCount(len(deployments))
        for row, d in enumerate(deployments):
            name = d.label or d.model or d.name or "?"
            if d.model and d.label and d.label != d.model:
                name = f"{d.label} ({d.model})"
            status = d.status
            replicas = f"{d.replicas_running}/{d.replicas_target}"
            cells = (name, status, replicas, d.message)
            for col, text in enumerate(cells):
                item = self.item(row, col)
                if item is None:
                    item = QTableWidgetItem()
                    self.setItem(row, col, item)
                item.setText(text)
                item.setToolTip(text if col in (0, 3) else "")
                if col == 2:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            colour = _STATUS_COLOURS.get(status)
            self.item(row, 1).setForeground(QBrush(QColor(colour)) if colour else QBrush())

    def clear_status(self) -> None:
        self.setRowCount(0)
        self.charts.clear()
        self.machines.clear()

    def rows(self) -> list[tuple[str, ...]]:
        """The table's text, row by row (tests and the tray tooltip read it)."""
        return [
            tuple(self.item(r, c).text() if self.item(r, c) else "" for c in range(self.columnCount()))
            for r in range(self.rowCount())
        ]


class StatusAndLog(QSplitter):
    """The "Status" group (phase line, table) and the "Log" group, resizable against each other."""

    def __init__(self, parent=None):
        super().__init__(Qt.Orientation.Vertical, parent)
        status_box = QGroupBox("Status")
        status_layout = QVBoxLayout(status_box)
        self.phase_label = QLabel("Not serving.")
        self.phase_label.setWordWrap(True)
        status_layout.addWidget(self.phase_label)
        self.status_table = StatusTable()
        status_layout.addWidget(self.status_table)
        status_layout.addWidget(self.status_table.charts)
        status_layout.addWidget(self.status_table.machines)
        log_box = QGroupBox("Log")
        log_layout = QVBoxLayout(log_box)
        self.log_view = LogView()
        log_layout.addWidget(self.log_view)
        self.addWidget(status_box)
        self.addWidget(log_box)
        self.setStretchFactor(0, 2)
        self.setStretchFactor(1, 3)
        self.setChildrenCollapsible(False)

    def show_log(self) -> None:
        """The log at a readable height, at its newest line, with the focus."""
        sizes = self.sizes()
        if len(sizes) == 2 and sizes[1] < 120:
            self.setSizes([max(90, sum(sizes) - 240), 240])
        bar = self.log_view.text.verticalScrollBar()
        bar.setValue(bar.maximum())
        self.log_view.text.setFocus()
