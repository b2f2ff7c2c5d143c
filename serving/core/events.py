"""The supervisor's event stream: one JSON object per line on stdout, written and read.

The events themselves (phase, status, error, log, applied) and the stdin commands are
described, and modelled, in serving/core/protocol.py. Kept free of Ray so both sides import it.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any, TextIO

from serving.core.download_progress import DownloadLines
from serving.core.protocol import APP_STATUSES, DEPLOYMENT_STATUSES, Event, Phase, event_from, parse_event

__all__ = ["APP_STATUSES", "DEPLOYMENT_STATUSES", "Event", "EventWriter", "Phase", "parse_line"]


class EventWriter:
    """Writes events as JSON lines (machine mode) or short human lines."""

    def __init__(self, stream: TextIO | None = None, as_json: bool = False):
        self.stream = stream or sys.stdout
        self.as_json = as_json
        self._lock = threading.Lock()
        self._downloads = DownloadLines()  # a download's line, rewritten in place on a terminal

    def emit(self, event: str, **fields: Any) -> None:
        record = {"event": event, "time": round(time.time(), 3), **fields}
        event_from(record)  # a malformed event is a bug here, not a puzzle for the reader
        end = "\n"
        if self.as_json:
            line = json.dumps(record, default=str)
        elif event == "download":
            line, ends = self._downloads.line(record, _isatty(self.stream)) or (None, True)
            end = "\n" if ends else ""
        else:
            line = self._human(record)
        if line is None:
            return
        with self._lock:
            try:
                if event != "download" and not self.as_json:
                    self.stream.write(self._downloads.close())
                self.stream.write(line + end)
                self.stream.flush()
            except (BrokenPipeError, ValueError, OSError):
                pass  # the reader is gone; the supervisor still stops cleanly

    def switch(self, stream: TextIO, as_json: bool) -> None:
        with self._lock:
            self.stream, self.as_json = stream, as_json

    @staticmethod
    def _human(record: dict) -> str | None:
        kind = record["event"]
        if kind == "phase":
            if record["phase"] == Phase.error.value:
                return None  # the error event already said it
            msg = record.get("message") or record["phase"]
            return f"[{record['phase']}] {msg}"
        if kind == "error":
            hint = record.get("hint")
            return f"error: {record['message']}" + (f"\n  hint: {hint}" if hint else "")
        if kind == "log":
            return f"{record.get('level', 'info')}: {record['message']}"
        if kind == "status":
            return None  # humans get phase lines; `gradio-serve status` shows the table
        if kind == "metrics":
            return None  # `gradio-serve status --watch` shows them
        return json.dumps(record, default=str)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def parse_line(line: str) -> Event | None:
    """Parse one event line into its model; None for anything that is not an event (e.g. stray log output)."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    return parse_event(record)
