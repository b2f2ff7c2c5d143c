"""Fake `gradio-serve up --events`: FAKE_MODE = ok | fail | stubborn | noisy."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.setpgid(0, 0)
mode = os.environ.get("FAKE_MODE", "ok")
args = sys.argv[1:]
config = json.loads(Path(args[args.index("--config") + 1]).read_text())
port = config.get("http", {}).get("port", 8000)
url = f"http://127.0.0.1:{port}/"


def emit(event, **kw):
    print(json.dumps({"event": event, "time": time.time(), **kw}), flush=True)


emit("phase", phase="validating", message="checking", url=None, pid=os.getpid(), pgid=os.getpgrp())
if mode == "fail":
    emit("error", message="port 8000 is in use", hint="pick another port with --port")
    emit("phase", phase="error", message="failed", url=None, pid=os.getpid(), pgid=os.getpgrp())
    sys.exit(2)
# A helper in the same process group, like Ray's agents.
stubborn = "import time, signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)"
child = subprocess.Popen([sys.executable, "-c", stubborn])
if mode == "noisy":
    print("not an event line", flush=True)
    print("a log line on stderr", file=sys.stderr, flush=True)
emit("phase", phase="deploying", message="deploying", url=url, pid=os.getpid(), pgid=os.getpgrp())
deps = [
    {
        "name": "Model0",
        "label": "m0",
        "model": m.get("model", "smollm2-135m-instruct"),
        "status": "RUNNING",
        "replicas_running": m.get("replicas", 1),
        "replicas_target": m.get("replicas", 1),
        "message": "",
    }
    for m in config["models"]
]
emit("status", app_status="RUNNING", deployments=deps)
emit("phase", phase="running", message="serving", url=url, pid=os.getpid(), pgid=os.getpgrp())
for line in sys.stdin:
    cmd = line.strip()
    if cmd == "stop" and mode != "stubborn":
        emit("phase", phase="stopping", message="stopping", url=url, pid=os.getpid(), pgid=os.getpgrp())
        child.terminate()
        child.kill()
        child.wait()
        emit("phase", phase="stopped", message="stopped", url=None, pid=os.getpid(), pgid=os.getpgrp())
        sys.exit(0)
if mode == "stubborn":
    time.sleep(300)
child.kill()
