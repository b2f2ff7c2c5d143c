"""Fake `gradio-serve up --events` that also answers apply requests like serving/cluster/supervisor.py.

Model "broken" fails to deploy (answered, then the old one restored); "refused" is refused at once;
"download-me" is downloaded first (its progress in the status record)."""

import json
import os
import sys
import time
from pathlib import Path

from apply_loop import serve_apply_requests

from serving.core import paths

os.setpgid(0, 0)
args = sys.argv[1:]
config = json.loads(Path(args[args.index("--config") + 1]).read_text())
url = f"http://127.0.0.1:{config['http']['port']}/"
apply_s = float(os.environ.get("FAKE_APPLY_S", "1.0"))


def emit(event, **kw):
    print(json.dumps({"event": event, "time": time.time(), **kw}), flush=True)


def phase(name, message):
    emit("phase", phase=name, message=message, url=url, pid=os.getpid(), pgid=os.getpgrp())


def status(cfg):
    emit(
        "status",
        app_status="RUNNING",
        deployments=[
            {
                "name": f"model{i}",
                "label": m["model"],
                "model": m["model"],
                "status": "RUNNING",
                "replicas_running": m["replicas"],
                "replicas_target": m["replicas"],
                "message": "",
            }
            for i, m in enumerate(cfg["models"])
        ],
    )


def record(cfg):
    paths.write_json_atomic(
        paths.supervisor_record(), {"pid": os.getpid(), "pgid": os.getpgrp(), "url": url, "config": cfg}
    )


def answer(request_id, ok, message, hint=""):
    applied = {"id": request_id, "ok": ok, "message": message, "hint": hint}
    emit("applied", **applied)
    paths.write_json_atomic(paths.status_record(), {"phase": "running", "url": url, "applied": applied})


phase("validating", "checking")
phase("deploying", "deploying")
status(config)
record(config)
phase("running", f"ready at {url}")


def apply(request):
    global config
    wanted, rid = request["config"], request["id"]
    model = wanted["models"][0]["model"]
    if model == "refused":
        answer(rid, False, "the app is still starting or changing", "wait until it is running, then apply again")
        return
    if model == "download-me":  # a Hub model not here: its progress in the status record, as the supervisor's
        for done in (1, 2, 3):
            download = {"time": time.time(), "model": model, "done_bytes": done * 1_000_000,
                        "total_bytes": 4_000_000, "bytes_per_s": 1_000_000, "eta_s": 4 - done}
            paths.write_json_atomic(paths.status_record(), {"phase": "running", "url": url, "download": download})
            time.sleep(0.4)
    phase("deploying", "applying " + model)
    time.sleep(apply_s)
    if model == "broken":
        answer(rid, False, "the app failed to deploy: broken", "the previous models are being restored")
        phase("deploying", "restoring")
        time.sleep(0.3)
        phase("running", f"ready at {url}")
        return
    config = wanted
    status(config)
    phase("running", f"ready at {url}")
    answer(rid, True, "applied: " + model)
    record(config)


serve_apply_requests(apply)
phase("stopping", "stopping")
paths.supervisor_record().unlink(missing_ok=True)
phase("stopped", "stopped")
