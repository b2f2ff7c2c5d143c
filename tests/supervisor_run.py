"""Runs `gradio-serve up --events` as the launcher does, and ends it (and its group) by PID.

`Up` is benchmarks/common.py's: the tests and the benchmarks run the supervisor with one helper.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from serving.cluster.reaper import group_alive  # noqa: F401 - re-exported for the tests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # benchmarks/ is not installed: it is imported from the checkout
from benchmarks.common import Up, free_port  # noqa: F401 - re-exported for the tests


def port_listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
