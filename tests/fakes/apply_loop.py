"""The fake supervisors' main loop, as serving/cluster/supervisor.py runs its own: until stdin says `stop`
(or closes), take each apply request a SIGUSR1 announces and hand it to `handle`."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable

from serving.core import apply_request


def serve_apply_requests(handle: Callable[[dict], None]) -> None:
    usr1, stop = threading.Event(), threading.Event()
    signal.signal(signal.SIGUSR1, lambda *_: usr1.set())

    def read_stdin():
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        stop.set()

    threading.Thread(target=read_stdin, daemon=True).start()
    while not stop.wait(0.05):
        if usr1.is_set():
            usr1.clear()
            handle(apply_request.take())
