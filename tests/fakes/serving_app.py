"""Fake `gradio-serve up --events` for mode app: its replicas come up one by one; apply; stop."""

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
pause = float(os.environ.get("FAKE_STEP_S", "0.3"))


def emit(event, **kw):
    print(json.dumps({"event": event, "time": time.time(), **kw}), flush=True)


def phase(name, message):
    emit(
        "phase", phase=name, message=message, url=url if name == "running" else None, pid=os.getpid(), pgid=os.getpgrp()
    )


def status(cfg, running, state="UPDATING"):
    app = cfg["app"]
    emit(
        "status",
        app_status="RUNNING" if state == "HEALTHY" else "DEPLOYING",
        deployments=[
            {
                "name": "app",
                "label": "demo",
                "model": app["target"],
                "status": state,
                "replicas_running": running,
                "replicas_target": app["replicas"],
                "message": "",
            }
        ],
    )


def record(cfg):
    paths.write_json_atomic(
        paths.supervisor_record(), {"pid": os.getpid(), "pgid": os.getpgrp(), "url": url, "config": cfg}
    )


def answer(request_id, ok, message):
    applied = {"id": request_id, "ok": ok, "message": message, "hint": ""}
    emit("applied", **applied)
    paths.write_json_atomic(paths.status_record(), {"phase": "running", "url": url, "applied": applied})


assert config["mode"] == "app" and config["models"] == [], config
phase("validating", "checking the configuration")
time.sleep(pause)
phase("starting_cluster", "starting a local Ray cluster")
time.sleep(pause)
phase("deploying", "deploying app")
for running in range(config["app"]["replicas"]):
    status(config, running)
    time.sleep(pause)
status(config, config["app"]["replicas"], "HEALTHY")
record(config)
phase("running", f"ready at {url}")


def apply(request):
    global config
    phase("deploying", "applying app")
    time.sleep(pause)
    config = request["config"]
    status(config, config["app"]["replicas"], "HEALTHY")
    phase("running", f"ready at {url}")
    answer(request["id"], True, "applied: app")
    record(config)


serve_apply_requests(apply)
phase("stopping", "stopping")
paths.supervisor_record().unlink(missing_ok=True)
phase("stopped", "stopped")
