"""Watchdog: when the supervisor dies without cleaning up, end its process group.

Started by the supervisor in a session of its own, holding the write end of our
stdin. EOF on stdin means the supervisor is gone (clean exit or SIGKILL); if it
ended cleanly the group is already empty and this does nothing.

    python -m serving.cluster.reaper PGID SUPERVISOR_PID
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from serving.core.process_group import group_alive, stop_group

__all__ = ["group_alive", "main"]  # group_alive: where the tests have always found it


def start() -> subprocess.Popen:
    """The watchdog of this process's group, in a session of its own; closing its stdin says we ended cleanly.
    Ray's agents outlive a SIGKILLed driver (measured: 50 s and more)."""
    return subprocess.Popen([sys.executable, "-m", "serving.cluster.reaper", str(os.getpgid(0)), str(os.getpid())],
                            stdin=subprocess.PIPE, start_new_session=True)


def main() -> int:
    pgid, supervisor = int(sys.argv[1]), int(sys.argv[2])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C meant for the supervisor is not for us
    sys.stdin.buffer.read()  # blocks until the supervisor's end of the pipe closes
    # Give a clean shutdown a moment to finish on its own before forcing anything.
    for _ in range(20):
        if not group_alive(pgid):
            return 0
        try:
            os.kill(supervisor, 0)
        except ProcessLookupError:
            break  # the supervisor is gone but its group lives on: clean up after it
        time.sleep(0.5)
    stop_group(pgid, grace_s=3.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
