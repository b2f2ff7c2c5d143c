"""Where the launcher's log goes: a rotating file in log_dir() and the window's log view.

Everything shown in the log view passes through the `launcher` logger, so the
file and the view always agree: the supervisor's output (logger
`launcher.supervisor`), error details, and the launcher's own notes.
"""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from serving.core import paths

LOGGER = "launcher"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class LogBridge(QObject):
    """Carries log lines to the GUI thread (handlers may run in worker threads)."""

    line = Signal(str, int)  # text, logging level


class _QtHandler(logging.Handler):
    def __init__(self, bridge: LogBridge):
        super().__init__(logging.INFO)
        self.bridge = bridge

    def emit(self, record: logging.LogRecord) -> None:
        try:
            # The supervisor's own lines are shown as they came; ours get a prefix.
            text = record.getMessage() if record.name.endswith(".supervisor") else f"[launcher] {record.getMessage()}"
            self.bridge.line.emit(text, record.levelno)
        except RuntimeError:
            pass  # the bridge was deleted at shutdown


_bridge: LogBridge | None = None


def bridge() -> LogBridge:
    """The process-wide bridge; the log view connects to its `line` signal."""
    global _bridge
    if _bridge is None:
        _bridge = LogBridge()
        logging.getLogger(LOGGER).addHandler(_QtHandler(_bridge))
        logging.getLogger(LOGGER).setLevel(logging.INFO)
    return _bridge


def log_file() -> Path:
    return paths.log_dir() / "launcher.log"


def setup_file_logging() -> Path | None:
    """Also write the log to log_dir()/launcher.log; None when that is not writable."""
    logger = logging.getLogger(LOGGER)
    logger.setLevel(logging.INFO)
    target = log_file()
    for h in logger.handlers:
        if isinstance(h, logging.FileHandler) and Path(h.baseFilename) == target:
            return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(target, maxBytes=2_000_000, backupCount=2, encoding="utf-8")
    except OSError:
        return None  # the window still shows everything
    handler.setFormatter(logging.Formatter(_FORMAT))
    logger.addHandler(handler)
    return target


def supervisor_logger() -> logging.Logger:
    return logging.getLogger(f"{LOGGER}.supervisor")


def launcher_logger() -> logging.Logger:
    return logging.getLogger(LOGGER)
