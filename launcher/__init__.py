"""Gradio Serve Launcher: the desktop window and tray (PySide6).

This package never imports ray, gradio, torch or transformers: it drives the
supervisor (`gradio-serve up --events`) through QProcess and JSON lines.
"""

__all__: list[str] = []
