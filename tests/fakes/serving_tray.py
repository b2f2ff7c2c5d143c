"""Fake `gradio-serve up --events` for test_tray_real.py, as far as the launcher can tell.

Its mode is read from $TRAY_CONTROL/mode at each start: ok, hold (stay in "starting" until the
file `go` exists there) or fail. Each run appends its process group to $TRAY_CONTROL/pgids.
"""

import json
import os
import sys
import time
from pathlib import Path

os.setpgid(0, 0)
control = Path(os.environ["TRAY_CONTROL"])
with open(control / "pgids", "a") as f:
    f.write(f"{os.getpgrp()}\n")
mode = (control / "mode").read_text().strip() if (control / "mode").exists() else "ok"
args = sys.argv[1:]
config = json.loads(Path(args[args.index("--config") + 1]).read_text())
url = f"http://127.0.0.1:{config.get('http', {}).get('port', 8000)}/"


def emit(event, **kw):
    print(json.dumps({"event": event, "time": time.time(), **kw}), flush=True)


def phase(name, message, url=None):
    emit("phase", phase=name, message=message, url=url, pid=os.getpid(), pgid=os.getpgrp())


phase("validating", "checking the configuration")
if mode == "fail":
    emit("error", message="the fake supervisor fails on purpose", hint="start again")
    phase("error", "failed")
    sys.exit(2)
while mode == "hold" and not (control / "go").exists():
    time.sleep(0.05)
phase("deploying", "deploying", url)
emit(
    "status",
    app_status="RUNNING",
    deployments=[
        {
            "name": "model0",
            "label": "",
            "model": "fake",
            "status": "RUNNING",
            "replicas_running": 1,
            "replicas_target": 1,
            "message": "",
        }
    ],
)
phase("running", "ready", url)
for line in sys.stdin:
    if line.strip() == "stop":
        phase("stopping", "stopping", url)
        phase("stopped", "stopped")
        sys.exit(0)
