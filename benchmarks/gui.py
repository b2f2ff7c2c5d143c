"""The launcher window (QT_QPA_PLATFORM=offscreen), run as a fresh subprocess.

    python -m benchmarks.gui shown                 # prints {"shown_s": ...} once the window is shown
    python -m benchmarks.gui cycle MODEL PORT      # Start -> Running -> Stop -> Stopped with the real
                                                   # supervisor; the longest main-thread stall (10 ms timer)

The parent measures shown_s from before it spawns this process (interpreter start and imports
included); the child also reports the time from its own process creation.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def emit(**kw) -> None:
    print(json.dumps(kw), flush=True)


def shown() -> None:
    import psutil
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from launcher.settings import Settings
    from launcher.window import MainWindow

    app = QApplication(sys.argv)
    window = MainWindow(Settings(), open_browser=False)
    window.show()

    def done():
        created = psutil.Process().create_time()
        emit(shown=True, wall=time.time(), since_process_start_s=round(time.time() - created, 3),
             visible=window.isVisible())
        app.quit()

    QTimer.singleShot(0, done)  # runs once the show has been processed by the event loop
    app.exec()


def cycle(model: str, port: int) -> None:
    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    from launcher.settings import Settings
    from launcher.window import MainWindow

    app = QApplication(sys.argv)
    window = MainWindow(Settings(), open_browser=False)
    window.show()
    clock = QElapsedTimer()
    clock.start()
    state = {"phase": "idle", "idle_until": time.monotonic() + 5, "idle_max": 0.0, "top": [], "last": None, "max_gap": 0.0, "gaps": [], "t_start": None, "marks": {},
             "deadline": time.monotonic() + 400}
    ticker = QTimer()
    ticker.setInterval(10)

    def tick():
        now = clock.nsecsElapsed() / 1e6
        cpu = time.thread_time() * 1000  # main-thread CPU: tells work on this thread from waiting
        cpu_used = cpu - state.get("cpu", cpu)
        state["cpu"] = cpu
        if state["last"] is not None and state["phase"] == "idle":
            # Control: the same timer with nothing going on (machine noise alone).
            state["idle_max"] = max(state["idle_max"], now - state["last"] - 10.0)
        if state["last"] is not None and state["phase"] in ("starting", "stopping"):
            gap = now - state["last"] - 10.0  # beyond the timer's own period
            state["gaps"].append(gap)
            if gap > 50:
                t_phase = time.monotonic() - state["t_start" if state["phase"] == "starting" else "t_stop"]
                # (stall ms, phase, s into the phase, main-thread CPU ms used during the gap, state)
                state["top"].append((round(gap, 1), state["phase"], round(t_phase, 2), round(cpu_used, 1),
                                     window.state_text()[:40]))
            if gap > state["max_gap"]:
                state["max_gap"] = gap
                state["max_at"] = state["phase"]
        state["last"] = now
        step()

    def step():
        text = window.state_text()
        if time.monotonic() > state["deadline"]:
            finish(error=f"timed out in phase {state['phase']} ({text})")
        elif state["phase"] == "idle" and time.monotonic() > state["idle_until"]:
            state["phase"] = "catalog"
        elif state["phase"] == "catalog" and window.form.catalog_loaded:
            row = window.form.rows[0]
            row.model.setEditText(model)
            row.cpus.setValue(1)
            window.form.port.setValue(port)
            state["phase"] = "starting"
            state["t_start"] = time.monotonic()
            window.start_serving(interactive=False)
        elif state["phase"] == "starting" and (text.startswith(("Running", "Failed"))):
            state["marks"]["running_s"] = round(time.monotonic() - state["t_start"], 2)
            if text.startswith("Failed"):
                finish(error="start failed: " + window.log_view.plain_text()[-1500:])
                return
            state["phase"] = "stopping"
            state["t_stop"] = time.monotonic()
            window.stop_serving()
        elif state["phase"] == "stopping" and text == "Stopped":
            state["marks"]["stopped_s"] = round(time.monotonic() - state["t_stop"], 2)
            finish()

    def finish(error: str | None = None):
        ticker.stop()
        gaps = sorted(state["gaps"])
        emit(max_stall_ms=round(max(state["max_gap"], 0.0), 1), max_stall_phase=state.get("max_at"),
             p99_stall_ms=round(gaps[int(0.99 * (len(gaps) - 1))], 1) if gaps else None, ticks=len(gaps),
             stalls_over_100ms=sum(1 for g in gaps if g > 100), error=error,
             idle_control_max_stall_ms=round(state["idle_max"], 1),
             worst_stalls=sorted(state["top"], reverse=True)[:8],
             controller_pid=getattr(window.controller, "pid", None),
             controller_pgid=getattr(window.controller, "pgid", None), **state["marks"])
        if error and window.controller is not None and window.controller.running():
            window.controller.kill_now(wait_s=10)
        QTimer.singleShot(500, app.quit)

    ticker.timeout.connect(tick)
    ticker.start()
    app.exec()


if __name__ == "__main__":
    if sys.argv[1] == "shown":
        shown()
    else:
        cycle(sys.argv[2], int(sys.argv[3]))
