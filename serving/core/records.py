"""Reading the records a supervisor leaves in the state folder, and telling a live one from a stale one.

One reader for `gradio-serve status/apply/down`, the supervisor (is one running already?) and
the launcher (an app left running by "Quit, keep serving" or a terminal). The shapes are in
serving/core/protocol.py. Light: the launcher imports it.
"""

from __future__ import annotations

import psutil
from pydantic import ValidationError

from serving.core import paths
from serving.core.protocol import StatusRecord, SupervisorRecord


def _looks_like_supervisor(proc: psutil.Process) -> bool:
    try:
        cmd = " ".join(proc.cmdline())
    except (psutil.Error, OSError):
        return False
    return "serving" in cmd or "gradio-serve" in cmd  # `python -m serving...` or the gradio-serve script


def read_supervisor_record() -> SupervisorRecord | None:
    """supervisor.json as written, alive or not; None when missing or not a record."""
    data = paths.read_json(paths.supervisor_record())
    try:
        return SupervisorRecord.model_validate(data) if data else None
    except ValidationError:
        return None


def read_status_record() -> StatusRecord | None:
    data = paths.read_json(paths.status_record())
    try:
        return StatusRecord.model_validate(data) if data else None
    except ValidationError:
        return None


def is_live(record: SupervisorRecord) -> bool:
    """Its process runs and is a supervisor: not gone, not a zombie, not a pid reused since."""
    if record.pid <= 1:
        return False
    try:
        proc = psutil.Process(record.pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        if record.started is not None and proc.create_time() > record.started + 1:
            return False  # the pid now belongs to a process started after the supervisor
        return _looks_like_supervisor(proc)
    except psutil.Error:
        return False


def live_record() -> SupervisorRecord | None:
    """The running supervisor's record, if its process is alive."""
    record = read_supervisor_record()
    return record if record is not None and is_live(record) else None
