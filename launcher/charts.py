"""Small live charts of what the app is doing, under the status table: requests/s, p95 latency, tokens/s
(once a model counts them), and each replica's CPU and memory, one line per deployment (or replica) over
the last five minutes. Fed by the supervisor's `metrics` events (every ~2 s; serving/core/protocol.py's
MetricsEvent); hidden until the first arrives, cleared with the status table.

Drawn with QPainter, not pyqtgraph: importing pyqtgraph (with numpy) costs ~0.8 s on the GUI thread, and
in a background thread it still stalled the GUI for 53-62 ms (the stall figure's goal is 100 ms, measured
8 ms). (Under PySide6 6.12.0 its many Python overrides also crashed the process: that release loses a
reference to None or True on every void call and emit, and is excluded in pyproject.toml.) An event here
appends one point per series to a bounded deque and asks for one repaint: well under a millisecond.
"""

from __future__ import annotations

import collections

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

from serving.core.protocol import MetricsEvent

HISTORY_S = 300.0  # the last five minutes
POINTS = 150  # per series: five minutes of events every 2 s
COLOURS = ("#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#4b5563")
MB = 1024 * 1024


class Chart(QWidget):
    """One chart: a line per series, times relative to the newest event (0 = now)."""

    def __init__(self, title: str, unit: str = "", parent=None):
        super().__init__(parent)
        self.title, self.unit = title, unit
        self._series: dict[str, collections.deque] = {}  # name -> (time, value or None: a gap)
        self._colours: dict[str, QColor] = {}
        self._now = 0.0
        self.setMinimumSize(160, 80)

    def add(self, time: float, values: dict[str, tuple[float | None, QColor]]) -> None:
        """One event's values; a series missing from it gets a gap (a deployment that went)."""
        self._now = time
        for name, (value, colour) in values.items():
            self._series.setdefault(name, collections.deque(maxlen=POINTS)).append((time, value))
            self._colours[name] = colour
        for name, series in self._series.items():
            if name not in values and series and series[-1][1] is not None:
                series.append((time, None))
        self.update()

    def clear(self) -> None:
        self._series.clear()
        self._colours.clear()
        self.update()

    def has_values(self) -> bool:
        return any(v is not None for series in self._series.values() for _t, v in series)

    def points(self, name: str) -> tuple[list[float], list[float]]:
        """A series' drawn points: seconds before the newest event, values (the tests read them)."""
        pairs = [(t - self._now, v) for t, v in self._series.get(name, ()) if v is not None]
        return [x for x, _ in pairs], [y for _, y in pairs]

    def names(self) -> list[str]:
        return list(self._series)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        try:
            self._paint(painter)
        finally:
            painter.end()

    def _paint(self, p: QPainter) -> None:
        palette = self.palette()
        text, grid = palette.windowText().color(), palette.mid().color()
        line_h = self.fontMetrics().height()
        values = [v for s in self._series.values() for t, v in s if v is not None and t >= self._now - HISTORY_S]
        top = max(values, default=0.0) or 1.0
        p.setPen(text)
        unit = f" ({self.unit})" if self.unit else ""
        p.drawText(QRectF(0, 0, self.width(), line_h), Qt.AlignmentFlag.AlignLeft, self.title + unit)
        p.drawText(QRectF(0, 0, self.width(), line_h), Qt.AlignmentFlag.AlignRight, f"max {_short(top)}")
        area = QRectF(1, line_h + 2, self.width() - 2, self.height() - 2 * line_h - 4)
        p.setPen(QPen(grid, 1))
        p.drawRect(area)
        p.drawText(QRectF(0, area.bottom() + 1, self.width(), line_h), Qt.AlignmentFlag.AlignLeft, "5 min ago")
        p.drawText(QRectF(0, area.bottom() + 1, self.width(), line_h), Qt.AlignmentFlag.AlignRight, "now")
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        for name, series in self._series.items():
            p.setPen(QPen(self._colours[name], 1.5))
            run: list[QPointF] = []
            for t, v in [*series, (None, None)]:
                if v is None or t < self._now - HISTORY_S:
                    _draw_run(p, run)
                    run = []
                    continue
                x = area.right() - (self._now - t) / HISTORY_S * area.width()
                run.append(QPointF(x, area.bottom() - v / (top * 1.1) * area.height()))


def _draw_run(p: QPainter, run: list[QPointF]) -> None:
    if len(run) == 1:
        p.drawEllipse(run[0], 1.5, 1.5)
    elif run:
        p.drawPolyline(run)


def _short(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.2g}" if value < 10 else f"{value:.1f}"


class MetricsCharts(QWidget):
    """The charts and a legend naming each deployment in its colour."""

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.legend = QLabel()
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.legend)
        grid = QGridLayout()
        layout.addLayout(grid)
        self.charts = {
            "requests": Chart("Requests/s"), "p95": Chart("p95 latency", "ms"), "tokens": Chart("Tokens/s"),
            "cpu": Chart("CPU per replica", "%"), "memory": Chart("Memory per replica", "MB"),
        }
        for i, chart in enumerate(self.charts.values()):
            grid.addWidget(chart, i // 3, i % 3)
        self._colours: dict[str, QColor] = {}
        self.clear()

    def colour(self, deployment: str) -> QColor:
        """One colour per deployment, the same on every chart."""
        if deployment not in self._colours:
            self._colours[deployment] = QColor(COLOURS[len(self._colours) % len(COLOURS)])
        return self._colours[deployment]

    def show_metrics(self, event: MetricsEvent) -> None:
        rows: dict[str, dict] = {key: {} for key in self.charts}
        for d in event.deployments:
            name, colour = d.label or d.name, self.colour(d.label or d.name)
            rows["requests"][name] = (d.requests_per_s, colour)
            rows["p95"][name] = (d.p95_ms, colour)
            if d.tokens_per_s is not None:
                rows["tokens"][name] = (d.tokens_per_s, colour)
            for i, process in enumerate(d.processes):
                replica = f"{name} #{i + 1}" if len(d.processes) > 1 else name
                rows["cpu"][replica] = (process.cpu_percent, colour)
                rows["memory"][replica] = (process.memory_bytes / MB, colour)
        for key, chart in self.charts.items():
            chart.add(event.time, rows[key])
        tokens = self.charts["tokens"]
        _set(tokens.setVisible, tokens.isVisibleTo(self), tokens.has_values())
        legend = "  ".join(f'<span style="color:{c.name()}">■</span> {_escape(n)}' for n, c in self._colours.items())
        _set(self.legend.setText, self.legend.text(), legend)
        _set(self.setVisible, not self.isHidden(), True)

    def clear(self) -> None:
        """Nothing shown until the next run's first figures."""
        for chart in self.charts.values():
            chart.clear()
        self._colours.clear()
        self.charts["tokens"].setVisible(False)
        self.setVisible(False)


def _set(setter, now, wanted) -> None:
    """Calls a Qt setter only when the value changes (every 2 s, most do not)."""
    if now != wanted:
        setter(wanted)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
