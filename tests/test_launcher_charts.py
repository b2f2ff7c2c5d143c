"""The status panel's live charts (launcher/charts.py) draw the supervisor's `metrics` events, fed through the
real controller (SupervisorProcess.handle_event -> metrics_changed), for one deployment and several; and the
process survives it: PySide6 6.12.0 lost a reference to True on each emit() and one to None on each void call
(excluded in pyproject.toml), which crashed pytest at exit once charts had drawn. Offscreen Qt."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from launcher.status_panel import StatusAndLog
from launcher.supervisor_process import SupervisorProcess

ROOT = Path(__file__).resolve().parent.parent


def metrics(t: float, rps: float, tokens: float | None = None, replicas: int = 2) -> dict:
    app = {"name": "app", "label": "demo · gr.Blocks", "requests_per_s": rps, "p95_ms": 20.0 + rps,
           "replicas": replicas, "processes": [{"pid": 100 + i, "cpu_percent": 10.0 * (i + 1),
                                                "memory_bytes": (i + 1) * 1024 * 1024} for i in range(replicas)]}
    deployments = [app]
    if tokens is not None:
        deployments.append({"name": "model0", "label": "tiny", "requests_per_s": 1.0, "p95_ms": 500.0,
                            "tokens_per_s": tokens, "batch_size": 2.0, "replicas": 1,
                            "processes": [{"pid": 7, "cpu_percent": 99.0, "memory_bytes": 300 * 1024 * 1024}]})
    return {"event": "metrics", "time": t, "window_s": 10.0, "deployments": deployments}


def panel_fed_by_a_controller(qtbot):
    panel = StatusAndLog()
    qtbot.addWidget(panel)
    panel.resize(800, 600)
    panel.show()
    controller = SupervisorProcess()
    controller.metrics_changed.connect(panel.status_table.charts.show_metrics)  # as window.py wires the session
    return panel, panel.status_table.charts, controller


def test_one_deployment_s_series(qtbot):
    panel, charts, controller = panel_fed_by_a_controller(qtbot)
    assert not charts.isVisible()  # until the first figures
    for i in range(3):
        controller.handle_event(metrics(1000.0 + 2 * i, rps=float(i)))
    assert charts.isVisible()
    requests, p95 = charts.charts["requests"], charts.charts["p95"]
    assert requests.points("demo · gr.Blocks") == ([-4.0, -2.0, 0.0], [0.0, 1.0, 2.0])  # newest at 0
    assert p95.points("demo · gr.Blocks")[1] == [20.0, 21.0, 22.0]
    assert charts.charts["cpu"].points("demo · gr.Blocks #2")[1] == [20.0, 20.0, 20.0]  # per replica
    assert charts.charts["memory"].points("demo · gr.Blocks #1")[1] == [1.0, 1.0, 1.0]  # MB
    assert not charts.charts["tokens"].isVisible()  # no model: no tokens chart
    assert "demo · gr.Blocks" in charts.legend.text()
    panel.repaint()

    panel.status_table.clear_status()  # what the window does on stop and on a new start
    assert not charts.isVisible() and requests.names() == []


def test_several_deployments_and_a_bounded_history(qtbot):
    panel, charts, controller = panel_fed_by_a_controller(qtbot)
    controller.handle_event(metrics(1000.0, rps=1.0))
    controller.handle_event(metrics(1002.0, rps=2.0, tokens=120.0))
    assert charts.charts["tokens"].isVisible()
    assert charts.charts["tokens"].names() == ["tiny"]  # the app has no tokens line
    assert charts.charts["requests"].points("tiny") == ([0.0], [1.0])
    assert charts.colour("tiny") != charts.colour("demo · gr.Blocks")
    controller.handle_event(metrics(1004.0, rps=3.0))  # the model went: its line stops
    assert charts.charts["requests"].points("tiny") == ([-2.0], [1.0])
    assert charts.charts["requests"].points("demo · gr.Blocks")[1] == [1.0, 2.0, 3.0]
    for i in range(400):
        controller.handle_event(metrics(1006.0 + 2 * i, rps=float(i % 5), tokens=50.0))
        if i % 50 == 0:
            panel.repaint()
    xs, _ys = charts.charts["requests"].points("demo · gr.Blocks")
    assert len(xs) == 150 and xs[-1] == 0.0 and xs[0] == -298.0  # five minutes, 150 points, no more


def test_drawing_keeps_the_references_to_true_and_none(qtbot):
    panel, charts, controller = panel_fed_by_a_controller(qtbot)
    controller.handle_event(metrics(1000.0, rps=1.0, tokens=1.0))
    panel.repaint()
    before = sys.getrefcount(True), sys.getrefcount(None)
    for i in range(200):
        controller.handle_event(metrics(1002.0 + 2 * i, rps=float(i), tokens=2.0))
        if i % 10 == 0:
            charts.repaint()
    after = sys.getrefcount(True), sys.getrefcount(None)
    assert after[0] >= before[0] - 20 and after[1] >= before[1] - 20, (before, after)  # 200+ lost when broken


SCRIPT = r"""
import os, sys
os.environ["QT_QPA_PLATFORM"] = "offscreen"
sys.path.insert(0, "tests")
from PySide6.QtWidgets import QApplication
app = QApplication([])
from launcher.main_thread_gc import MainThreadGC
collector = MainThreadGC(app)  # as launcher.app.main and the tests' conftest do
from launcher.status_panel import StatusAndLog
from launcher.supervisor_process import SupervisorProcess
from test_launcher_charts import metrics
panel, controller = StatusAndLog(), SupervisorProcess()
controller.metrics_changed.connect(panel.status_table.charts.show_metrics)
panel.show()
from PySide6.QtCore import QTimer
fed = [0]
def feed():  # from the event loop, as the supervisor's lines arrive; paints happen in between
    controller.handle_event(metrics(1000.0 + 2 * fed[0], rps=float(fed[0] % 9), tokens=3.0))
    fed[0] += 1
    if fed[0] == 800:  # unfixed, None runs out of references after ~550 painted events
        timer.stop()
        app.quit()
timer = QTimer()
timer.timeout.connect(feed)
timer.start(0)
app.exec()
print("drawn")
"""


def test_a_process_that_drew_the_charts_exits_cleanly():
    done = subprocess.run([sys.executable, "-c", SCRIPT], check=False, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "drawn" in done.stdout, done.stderr[-2000:]
    assert "Fatal Python error" not in done.stderr
