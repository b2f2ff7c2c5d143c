"""A supervisor left running ("Quit, keep serving"), as test_launcher_supervisor.py finds it.

It writes the supervisor record, a log with an old and a recent part and a running status,
prints "ready", and on SIGTERM removes its record and exits. ("serving" is in its file name
because launcher.attached.find_running looks for it in the command line, as the real one has.)
"""

import os
import signal
import sys
import time

from serving.core import paths

os.setpgid(0, 0)
url = "http://127.0.0.1:8124/"
paths.write_json_atomic(
    paths.supervisor_record(),
    {
        "pid": os.getpid(),
        "pgid": os.getpgrp(),
        "url": url,
        "config": {"mode": "summarize", "http": {"port": 8124}},
        "started": time.time(),
    },
)
paths.log_dir().mkdir(parents=True, exist_ok=True)
paths.supervisor_log().write_text("old line\n" + "x" * 5000 + "\nserving at " + url + "\n")
paths.write_json_atomic(
    paths.status_record(),
    {
        "phase": "running",
        "url": url,
        "app_status": "RUNNING",
        "deployments": [
            {
                "name": "Model0",
                "label": "m0",
                "model": "smollm2-135m-instruct",
                "status": "RUNNING",
                "replicas_running": 1,
                "replicas_target": 1,
                "message": "",
            }
        ],
    },
)


def bye(*_):
    paths.supervisor_record().unlink(missing_ok=True)
    sys.exit(0)


signal.signal(signal.SIGTERM, bye)
print("ready", flush=True)
time.sleep(120)
