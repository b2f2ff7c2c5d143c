"""A PySide6 bug worked around for the whole launcher: `signal.emit()` returns `True` without a
reference of its own (PySide6 6.12.0; 6.11.3 does not).

On Python before 3.12, where True is an ordinary object with a reference count, every emit from Python
takes one reference to True away. The count starts at a few thousand, so a process that emits enough
dies with "Fatal Python error: bool_dealloc" at a random place: a launcher serving for hours (the
`metrics` relay, the log), or a test process at exit once pyqtgraph had drawn (it emits dozens of
signals per paint). On Python 3.12+ True is immortal and nothing is lost.

The same release loses a reference to None each time C++ calls a Python override of a virtual that
returns nothing (`paintEvent`, a QGraphicsItem's `paint`, ...): `void_override_loses_none()` says whether
it does here, and an override of ours that runs often gives it back with `give_back_none()`.

`apply()` measures it once (an emit with no receiver) and, only where a reference is lost, wraps
`SignalInstance.emit` to give that reference back. Where it is not lost, it changes nothing.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, Signal, SignalInstance
from PySide6.QtGui import QImage

_PROBES = 64
_incref = ctypes.pythonapi.Py_IncRef
_incref.argtypes = [ctypes.py_object]
_incref.restype = None
_applied: bool | None = None  # None: not measured yet
_loses_none: bool | None = None


class _Probe(QObject):
    fired = Signal()


def emit_loses_true() -> bool:
    """Whether `emit()` takes a reference to True away here (what it took is given back)."""
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(_PROBES):
        probe.fired.emit()
    lost = before - sys.getrefcount(True)
    for _ in range(max(0, lost)):
        _incref(True)
    return lost >= _PROBES // 2  # another thread may move the count a little; the bug moves it by one an emit


def apply() -> bool:
    """Wrap `SignalInstance.emit` where it loses a reference to True; returns whether it did. Idempotent."""
    global _applied
    if _applied is None:
        _applied = emit_loses_true()
        if _applied:
            emit = SignalInstance.emit

            def emit_keeping_true(self, *args):
                result = emit(self, *args)
                if result is True:
                    _incref(True)  # the reference emit() returned without owning it
                return result

            SignalInstance.emit = emit_keeping_true
    return _applied


def void_override_loses_none() -> bool:
    """Whether a Python `paintEvent` called from C++ takes a reference to None away (measured once; needs
    the QApplication). What the measurement took is given back."""
    global _loses_none
    if _loses_none is None:
        from PySide6.QtWidgets import QWidget

        class Probe(QWidget):
            def paintEvent(self, event) -> None:
                pass

        probe, image = Probe(), QImage(4, 4, QImage.Format.Format_ARGB32)
        probe.resize(4, 4)
        before = sys.getrefcount(None)
        for _ in range(_PROBES):
            probe.render(image)
        lost = before - sys.getrefcount(None)
        for _ in range(max(0, lost)):
            _incref(None)
        probe.deleteLater()
        _loses_none = lost >= _PROBES // 2
    return _loses_none


def give_back_none() -> None:
    """At the end of a void override (paintEvent): the reference to None that its return will lose."""
    if _loses_none:
        _incref(None)


def keeping_none(work, *args) -> None:
    """Runs `work` (Qt calls that return nothing: a paint, setters) and, where they lose references to
    None, gives back what it lost."""
    before = sys.getrefcount(None)
    work(*args)
    if _loses_none:
        for _ in range(max(0, before - sys.getrefcount(None))):
            _incref(None)
