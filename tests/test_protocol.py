"""The process protocol (serving/core/protocol.py): what the supervisor writes parses back into the models,
the JSON on the wire keeps its shape, and a stale record is told from a live one (serving/core/records.py)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time

import pytest

from serving.core import apply_request, paths
from serving.core.config import LaunchConfig
from serving.core.events import EventWriter, parse_line
from serving.core.protocol import (
    AppliedEvent,
    ApplyAnswer,
    ErrorEvent,
    LogEvent,
    Phase,
    PhaseEvent,
    StatusEvent,
    StatusRecord,
    SupervisorRecord,
    parse_event,
)
from serving.core.records import live_record, read_status_record

DEPLOYMENT = {"name": "model0", "label": "m", "model": "gpt2", "status": "HEALTHY",
              "replicas_running": 1, "replicas_target": 2, "message": ""}


def _written(**events) -> list[dict]:
    out = io.StringIO()
    writer = EventWriter(out, as_json=True)
    for kind, fields in events.items():
        writer.emit(kind, **fields)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_every_event_the_supervisor_writes_parses_into_its_model():
    lines = _written(
        phase={"phase": "running", "message": "ready", "url": "http://127.0.0.1:8000/", "pid": 7, "pgid": 7},
        status={"app_status": "RUNNING", "deployments": [DEPLOYMENT]},
        error={"message": "port 8000 is in use", "hint": "pick another"},
        log={"level": "warning", "message": "careful"},
        applied={"id": "r1", "ok": False, "message": "no", "hint": "restored"},
    )
    # The wire: one flat object each, "event" and "time" first, the fields as given (unchanged by the models).
    assert [list(line)[:2] for line in lines] == [["event", "time"]] * 5
    assert lines[1]["deployments"] == [DEPLOYMENT]
    parsed = [parse_line(json.dumps(line)) for line in lines]
    assert [type(e) for e in parsed] == [PhaseEvent, StatusEvent, ErrorEvent, LogEvent, AppliedEvent]
    assert parsed[0].phase is Phase.running and parsed[0].pgid == 7
    assert parsed[1].deployments[0].replicas_target == 2
    assert parsed[4].answer() == ApplyAnswer(id="r1", ok=False, message="no", hint="restored")
    assert [e.as_json() for e in parsed] == lines  # a reader that passes them on (Qt signals) keeps them whole


def test_a_malformed_event_is_refused_when_written_and_skipped_when_read():
    with pytest.raises(ValueError):
        _written(phase={"phase": "flying"})
    assert parse_line("not json") is None
    assert parse_line('{"event": "phase"}') is None  # no phase
    assert parse_line('{"event": "gossip", "message": "x"}') is None  # not one of ours
    assert parse_event({"event": "log", "message": "m", "from_a_newer_writer": 1}).as_json()["from_a_newer_writer"] == 1


def test_apply_request_and_answer_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_SERVE_STATE_DIR", str(tmp_path))
    sent = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: sent.append((pid, sig)))
    request_id = apply_request.send(1234, {"mode": "summarize"})
    assert sent and sent[0][0] == 1234
    request = apply_request.take_request()
    assert request.id == request_id and request.config == {"mode": "summarize"}
    assert apply_request.take_request() is None, "carried out once"
    assert apply_request.result(request_id) is None
    answer = ApplyAnswer(id=request_id, ok=True, message="applied: gpt2")
    status = StatusRecord(phase=Phase.running, url="http://127.0.0.1:8000/", app_status="RUNNING",
                          deployments=[DEPLOYMENT], applied=answer)
    paths.write_json_atomic(paths.status_record(), status.as_json())
    assert apply_request.result(request_id) == answer
    assert apply_request.result("another") is None
    assert read_status_record() == status


def test_a_live_record_is_a_running_supervisor_not_a_dead_or_reused_pid(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_SERVE_STATE_DIR", str(tmp_path))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    paths.write_json_atomic(paths.supervisor_record(), SupervisorRecord(pid=dead.pid).as_json())
    assert live_record() is None
    # "serving" on its command line, as `python -m serving.cli up` has.
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "serving"])
    try:
        record = SupervisorRecord(pid=alive.pid, pgid=alive.pid, url="u", started=time.time(), config={"mode": "x"})
        paths.write_json_atomic(paths.supervisor_record(), record.as_json())
        assert live_record() == record
        reused = record.model_copy(update={"started": time.time() - 3600})  # the pid came after the record
        paths.write_json_atomic(paths.supervisor_record(), reused.as_json())
        assert live_record() is None
    finally:
        alive.kill()
        alive.wait()
    other = subprocess.Popen(["sleep", "30"])  # alive, but not a supervisor
    try:
        paths.write_json_atomic(paths.supervisor_record(), SupervisorRecord(pid=other.pid).as_json())
        assert live_record() is None
    finally:
        other.kill()
        other.wait()


def test_an_applied_answer_carries_the_new_config_to_the_launcher_at_once(qapp):
    from launcher.supervisor_process import SupervisorProcess

    controller = SupervisorProcess()
    changes = []
    controller.running_config_changed.connect(lambda before, after: changes.append(after))
    controller.running_config = LaunchConfig.from_dict({"mode": "summarize", "models": [{"model": "a"}]})
    wanted_json = {"mode": "summarize", "models": [{"model": "b"}]}
    wanted = LaunchConfig.from_dict(wanted_json)
    line = _written(applied={"id": "r1", "ok": True, "message": "applied: b", "hint": "", "config": wanted_json})[0]
    controller.handle_event(parse_line(json.dumps(line)))
    assert controller.running_config == wanted and changes == [wanted], "no timer, no record to wait for"
    refused = _written(applied={"id": "r2", "ok": False, "message": "no", "hint": "h"})[0]
    controller.handle_event(parse_line(json.dumps(refused)))
    assert controller.running_config == wanted
