"""The supervisor's event stream: one JSON object per line on stdout.

This is the whole contract between `gradio-serve up --events` and the launcher
(which reads it through QProcess). Kept free of Ray so both sides can import it.

Events (every one has "event" and "time"):
  {"event": "phase", "phase": PHASE, "message": str, "url": str|None, "pid": int, "pgid": int}
  {"event": "status", "app_status": str, "deployments": [
       {"name": str, "label": str, "model": str, "status": STATUS,
        "replicas_running": int, "replicas_target": int, "message": str}]}
  {"event": "error", "message": str, "hint": str}
  {"event": "log", "level": "info"|"warning"|"error", "message": str}

Commands the supervisor reads on stdin, one per line: "stop", "detach".
Stdin closing (the launcher died) means "stop" unless "detach" came first.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from enum import Enum
from typing import Any, TextIO


class Phase(str, Enum):
    validating = "validating"
    starting_cluster = "starting_cluster"
    deploying = "deploying"
    running = "running"
    stopping = "stopping"
    stopped = "stopped"
    error = "error"


# Serve's own words, reused rather than re-invented: app_status is an ApplicationStatus
# (NOT_STARTED, DEPLOYING, RUNNING, UNHEALTHY, DEPLOY_FAILED, DELETING), each deployment's
# status a DeploymentStatus (UPDATING, HEALTHY, UNHEALTHY, DEPLOY_FAILED, UPSCALING, DOWNSCALING).
APP_STATUSES = ("NOT_STARTED", "DEPLOYING", "RUNNING", "UNHEALTHY", "DEPLOY_FAILED", "DELETING")
DEPLOYMENT_STATUSES = ("UPDATING", "HEALTHY", "UNHEALTHY", "DEPLOY_FAILED", "UPSCALING", "DOWNSCALING")


class EventWriter:
    """Writes events as JSON lines (machine mode) or short human lines."""

    def __init__(self, stream: TextIO | None = None, as_json: bool = False):
        self.stream = stream or sys.stdout
        self.as_json = as_json
        self._lock = threading.Lock()

    def emit(self, event: str, **fields: Any) -> None:
        record = {"event": event, "time": round(time.time(), 3), **fields}
        line = json.dumps(record, default=str) if self.as_json else self._human(record)
        if line is None:
            return
        with self._lock:
            try:
                self.stream.write(line + "\n")
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
        return json.dumps(record, default=str)


def parse_line(line: str) -> dict | None:
    """Parse one event line; None for anything that is not an event (e.g. stray log output)."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) and "event" in record else None
