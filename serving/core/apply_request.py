"""Asking a running supervisor to change its app in place (a new model, replicas, settings).

The request is a file in the state folder plus SIGUSR1 to the supervisor, so the CLI,
the launcher and a launcher that re-attached to a detached supervisor all use one path.
The answer is the `applied` entry of the status record (and an `applied` event); the
request and the answer are modelled in serving/core/protocol.py.

Light on purpose (stdlib, pydantic, paths): the launcher imports it.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

from pydantic import ValidationError

from serving.core import paths
from serving.core.protocol import ApplyAnswer, ApplyRequest
from serving.core.records import read_status_record

# Changing these needs a new cluster or a new HTTP proxy, not a redeploy.
RESTART_ONLY = ("cluster", "http")


def request_file() -> Path:
    return paths.state_dir() / "apply-request.json"


def send(pid: int, config: dict) -> str:
    """Hand `config` (a LaunchConfig as JSON) to the supervisor `pid`; returns the request id."""
    request = ApplyRequest(id=uuid.uuid4().hex, config=config)
    paths.write_json_atomic(request_file(), request.as_json())
    os.kill(pid, signal.SIGUSR1)
    return request.id


def take_request() -> ApplyRequest | None:
    """The pending request, removed so it is carried out once."""
    path = request_file()
    data = paths.read_json(path)
    path.unlink(missing_ok=True)
    try:
        return ApplyRequest.model_validate(data) if data else None
    except ValidationError:
        return None


def take() -> dict | None:
    """take_request() as JSON, for callers that read it as a dict (the tests' fake supervisors)."""
    request = take_request()
    return request.as_json() if request else None


def result(request_id: str) -> ApplyAnswer | None:
    """The supervisor's answer once it has finished with that request."""
    status = read_status_record()
    applied = status.applied if status else None
    return applied if applied is not None and applied.id == request_id else None


def wait(request_id: str, pid_alive, timeout_s: float = 900, poll_s: float = 0.05,
         meanwhile=None) -> ApplyAnswer | None:
    """Poll for the result; None on timeout or when the supervisor went away (pid_alive() false).
    Often: a model swap is done in ~1 s, and reading one small file costs ~0.1 ms. `meanwhile()` is
    called at each poll (the CLI shows a download's progress)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answer = result(request_id)
        if answer:
            return answer
        if not pid_alive():
            return None
        if meanwhile is not None:
            meanwhile()
        time.sleep(poll_s)
    return None


def restart_needed(running: dict, wanted: dict) -> list[str]:
    """The top-level sections that differ in a way only a restart can carry out."""
    return [key for key in RESTART_ONLY if running.get(key) != wanted.get(key)]
