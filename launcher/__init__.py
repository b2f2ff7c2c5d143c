"""Gradio Serve Launcher: the desktop window and tray (PySide6).

This package never imports ray, gradio, torch or transformers: it drives the
supervisor (`gradio-serve up --events`) through QProcess and JSON lines.
"""

from launcher import pyside_fixes

pyside_fixes.apply()  # before any launcher module emits: PySide6 6.12.0's emit() loses a reference to True

__all__: list[str] = []
