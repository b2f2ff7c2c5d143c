"""Ending a process and its process group: SIGTERM, a grace period, then SIGKILL.

The supervisor leads its own process group, so whoever stops it (the launcher, `gradio-serve
down`, the reaper, the supervisor itself for its leftovers) can end Ray's helpers with it: Ray's
agents outlive their driver and ignore SIGTERM (measured: `ray::DashboardAgent` and
`ray::RuntimeEnvAgent` lived 50 s and more after a SIGKILLed driver, even without the dashboard). Every one of them uses
these helpers. Light (stdlib and psutil): the launcher imports it; the GUI's non-blocking
escalation uses `signal_group` and `group_alive` on its timers instead of `stop_group`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable

import psutil


def group_alive(pgid: int | None) -> bool:
    """Whether any process of group `pgid` exists (never true for our own group or init's)."""
    if not pgid or pgid <= 1 or pgid == os.getpgrp():
        return False
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def pid_alive(pid: int | None) -> bool:
    """Whether `pid` runs (a zombie does not: it has exited and waits to be reaped)."""
    if not pid or pid <= 0:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def signal_group(pgid: int | None, pid: int | None, sig: int) -> bool:
    """Signal the group `pgid`, never our own; without a group (it failed to lead one), just `pid`.

    Returns True if something was signalled."""
    try:
        if pgid and pgid > 1 and pgid != os.getpgrp():
            os.killpg(pgid, sig)
            return True
        if pid and pid > 1 and pid != os.getpid():
            os.kill(pid, sig)
            return True
    except (ProcessLookupError, PermissionError):
        pass
    return False


def stop_group(
    pgid: int | None,
    pid: int | None = None,
    grace_s: float = 5.0,
    *,
    term_pid_only: bool = False,
    kill: bool = True,
    done: Callable[[], bool] | None = None,
    poll_s: float = 0.2,
) -> bool:
    """SIGTERM, wait up to `grace_s` for `done()`, then SIGKILL the group (blocking).

    term_pid_only: SIGTERM goes to `pid` alone (a supervisor ends its own group cleanly);
    kill: False leaves it running after the grace period (someone else's cluster);
    done: when it counts as gone (default: the group, or else the pid, has no process left).
    Returns True if it went within the grace period, False if it had to be killed (or was left)."""

    def gone() -> bool:
        if done is not None:
            return done()
        return not group_alive(pgid) if pgid else not pid_alive(pid)

    if gone():
        return True
    signal_group(None if term_pid_only else pgid, pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if gone():
            return True
        time.sleep(poll_s)
    if gone():
        return True
    if kill:
        signal_group(pgid, pid, signal.SIGKILL)
    return False


def stop_processes(procs: list[psutil.Process], grace_s: float = 5.0) -> None:
    """SIGTERM each, wait up to `grace_s` for all, SIGKILL the rest (blocking)."""
    for p in procs:
        with contextlib.suppress(psutil.Error):  # gone already
            p.terminate()
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()


def end_own_group_members(grace_s: float = 5.0) -> None:
    """End the rest of our own process group (Ray's agents), never ourselves; only when we lead
    the group (run from a shell pipeline, it is the shell's: others' processes are left alone)."""
    me = os.getpid()
    pgid = os.getpgid(0)
    if pgid != me:
        return
    procs = []
    for p in psutil.process_iter():
        try:
            if p.pid != me and os.getpgid(p.pid) == pgid:
                procs.append(p)
        except (ProcessLookupError, psutil.Error, OSError):
            continue
    stop_processes(procs, grace_s)
