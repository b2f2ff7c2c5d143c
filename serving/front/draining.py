"""Replicas that scaling removes, kept serving the sessions they hold for a while (the app's port).

Gradio keeps a session's state in its replica's memory. When autoscaling (or an apply with fewer
replicas) removes a replica, Serve stops routing to it and, once no request is in flight there,
stops it: its idle sessions' state would go with it. So the app's port (serving/front/port_relay.py):
- keeps sending the requests of sessions pinned to it there, while new sessions go to the others;
- holds it with one request of its own (HOLD_PATH?replica=<id>, answered by
  serving/replica/gradio_server.py), which Serve's drain counts as in flight and waits for; its
  sessions go there only once that very replica answered (a dead one's port may be its replacement's);
- lets it go when none of its sessions was used for IDLE_S, or after the app's `session_drain_s`
  (Serve force-stops it at `graceful_shutdown_timeout_s`, set to at least that), and ends the
  streams still open there. Its sessions then move once to a live replica, as a dead replica's do.

Only a scale-down is held: a new version's rollout replaces replicas whose code is gone (the
supervisor tells which, from Serve's deployment status). A cookie-less session (keyed by its
session_hash) is hashed over the live replicas only: it moves at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from serving.front.sessions import HOLD_PATH

IDLE_S = 30.0  # a removed replica whose sessions sent nothing for this long is let go
CHECK_S = 1.0
UPSTREAM_HOST = "127.0.0.1"


class _Hold(asyncio.Protocol):
    def __init__(self, draining: Draining, replica: str):
        self.draining, self.replica = draining, replica
        self.transport: asyncio.Transport | None = None
        self.confirmed = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(f"GET {HOLD_PATH}?replica={self.replica} HTTP/1.1\r\nHost: {UPSTREAM_HOST}\r\n\r\n".encode())

    def data_received(self, data: bytes) -> None:
        if self.confirmed:
            return
        self.confirmed = True
        if data.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")):
            self.draining.confirm(self.replica)
        else:  # not that replica (its port is another's now): nothing to hold
            self.draining.release(self.replica)

    def connection_lost(self, exc) -> None:
        self.draining.release(self.replica)  # the replica ended (or was force-stopped)


class Draining:
    """The replicas being drained, by id: their ports, and when each session's replica was last used.
    Runs on the relay's event loop; `hold` is called there from the supervisor's thread."""

    def __init__(self, drain_s: float, idle_s: float = IDLE_S):
        self.drain_s, self.idle_s = drain_s, idle_s  # drain_s follows the app's config (an apply)
        self.replicas: dict[str, int] = {}  # held replica -> its own HTTP port
        self.last_used: dict[str, float] = {}  # replica -> when a session's request last went there
        self._since: dict[str, float] = {}
        self._holds: dict[str, _Hold] = {}
        self._ports: dict[str, int] = {}  # held, not yet confirmed by the replica itself
        self._timer: asyncio.TimerHandle | None = None
        self.said: Callable[[str], None] = lambda _line: None  # what it does, for the supervisor's log
        # Ends the clients' streams still open there (Gradio's heartbeats would hold it until Serve
        # force-stops it): they reconnect, and their sessions move.
        self.cut: Callable[[str], None] = lambda _replica: None

    def used(self, replica: str) -> None:
        self.last_used[replica] = time.monotonic()

    def hold(self, removed: dict[str, int]) -> None:
        """Removed replicas whose sessions were used lately are held; the others go at once."""
        now = time.monotonic()
        for replica, port in removed.items():
            if self.drain_s <= 0 or now - self.last_used.get(replica, -1e9) > min(self.idle_s, self.drain_s):
                self.last_used.pop(replica, None)
                continue
            self._ports[replica], self._since[replica] = port, now
            hold = _Hold(self, replica)
            self._holds[replica] = hold
            asyncio.get_running_loop().create_task(self._connect(hold, port))
        self._schedule()

    async def _connect(self, hold: _Hold, port: int) -> None:
        try:
            await asyncio.get_running_loop().create_connection(lambda: hold, UPSTREAM_HOST, port)
        except OSError:
            self.release(hold.replica)

    def confirm(self, replica: str) -> None:
        """The replica answered its hold: its sessions' requests go there from now on."""
        if (port := self._ports.pop(replica, None)) is not None:
            self.replicas[replica] = port
            self.said(f"replica {replica} was scaled down: it serves its sessions while they are in use, "
                      f"for at most {self.drain_s:g} s")
            self._schedule()

    def release(self, replica: str, why: str = "it ended", cut: bool = False) -> None:
        """`cut`: we let go of a live replica: the streams still open there end too (a dead one's ended)."""
        self._ports.pop(replica, None)
        if self.replicas.pop(replica, None) is not None:
            self.said(f"replica {replica} let go ({why}): its sessions move to the others")
            if cut:
                self.cut(replica)
        self._since.pop(replica, None)
        self.last_used.pop(replica, None)
        hold = self._holds.pop(replica, None)
        if hold is not None and hold.transport is not None:
            hold.transport.close()

    def release_all(self) -> None:
        for replica in [*self.replicas, *self._ports]:
            self.release(replica, "the app stops")

    def _schedule(self) -> None:
        if self.replicas and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(CHECK_S, self._check)

    def _check(self) -> None:
        self._timer = None
        now = time.monotonic()
        for replica in list(self.replicas):
            if now - self.last_used.get(replica, 0.0) > min(self.idle_s, self.drain_s):
                self.release(replica, "its sessions are idle", cut=True)
            elif now - self._since[replica] > self.drain_s:
                self.release(replica, "its drain is over", cut=True)
        self._schedule()
