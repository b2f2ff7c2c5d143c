"""The launcher receives the supervisor's `metrics` events (#22 item 2) as typed MetricsEvent objects, passed
on by the controller and the session for the status panel to draw. Offscreen Qt."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from launcher.supervisor_process import SupervisorProcess
from serving.core.protocol import MetricsEvent


def test_a_metrics_event_reaches_the_controller_s_signal(qtbot):
    controller, got = SupervisorProcess(), []
    controller.metrics_changed.connect(got.append)
    controller.handle_event({"event": "metrics", "time": 1000.0, "window_s": 10.0, "deployments": [
        {"name": "model0", "label": "tiny", "requests_per_s": 1.5, "p95_ms": 500.0, "tokens_per_s": 120.0,
         "batch_size": 2.0, "replicas": 1, "processes": [{"pid": 42, "cpu_percent": 97.5, "memory_bytes": 1}]}]})
    assert len(got) == 1 and isinstance(got[0], MetricsEvent)
    d = got[0].deployments[0]
    assert (d.name, d.tokens_per_s, d.processes[0].pid) == ("model0", 120.0, 42)
