"""Python's cyclic garbage collection, run on the Qt main thread only.

Python collects cycles in whichever thread happens to cross an allocation
threshold. When that is a QueryOp worker (e.g. scanning the model cache) and the
garbage holds a Qt wrapper, the C++ object is destroyed off the GUI thread and
the process dies with a segfault (it did, in CI). So automatic collection is
switched off and a main-thread timer applies Python's own generational thresholds.

    collector = MainThreadGC(app)   # as soon as the QApplication exists
    collector.stop()                # automatic collection back on (tests)
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

# Often enough that young garbage never piles up; a check is three integer compares.
CHECK_INTERVAL_MS = 200


class MainThreadGC(QObject):
    def __init__(self, parent: QObject, interval_ms: int = CHECK_INTERVAL_MS):
        super().__init__(parent)
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.check)
        self._timer.start(interval_ms)

    def check(self) -> int | None:
        """Collect the oldest generation whose threshold is crossed, as Python would; returns it."""
        thresholds = gc.get_threshold()
        counts = gc.get_count()
        generation = None
        for gen in range(3):
            if thresholds[gen] and counts[gen] > thresholds[gen]:
                generation = gen
        if generation is not None:
            gc.collect(generation)
        return generation

    def stop(self) -> None:
        """Collect what is left here, then give collection back to Python."""
        self._timer.stop()
        gc.collect()
        if self._was_enabled:
            gc.enable()
