"""Fakes for the launcher's tests.

serving_*.py are fake supervisors, run as scripts in place of `gradio-serve up --events`: each
speaks serving/core/events.py's protocol as far as its tests need. Their file names contain "serving"
because launcher.attached.find_running recognises a supervisor by that word in its command line.
`path(name)` is a fake's file; controller.py holds in-process fakes of the window's controller.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def path(name: str) -> str:
    """The file of fake `name` (e.g. "serving_up"), to run with sys.executable."""
    return str(HERE / f"{name}.py")
