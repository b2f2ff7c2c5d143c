"""A supervisor some earlier launch left serving ("Quit, keep serving"), or a `gradio-serve up` in a terminal.

Found through serving/core/records.py's live_record(); followed by reading
the status record and the supervisor record's config (it changes when a change is applied)
once a second (in a worker); stopped with SIGTERM to its pid, then its process
group after a grace period.
"""

from __future__ import annotations

import signal
import time

from PySide6.QtCore import QObject, QTimer

from launcher.logs import launcher_logger, supervisor_logger
from launcher.serving_controller import ServingController, ServingState, config_from, state_for_phase
from launcher.worker import QueryOp
from serving.core import paths
from serving.core.process_group import pid_alive, signal_group
from serving.core.protocol import StatusEvent, StatusRecord, SupervisorRecord
from serving.core.records import live_record, read_status_record, read_supervisor_record


def find_running() -> SupervisorRecord | None:
    """The record of a supervisor that runs now, if any (serving/core/records.py's rules)."""
    return live_record()


def _read_update(
    log_offset: int | None,
) -> tuple[StatusRecord | None, list[str], int, SupervisorRecord | None]:
    """The latest status, the supervisor log's lines since `log_offset` and the supervisor record
    (worker thread).

    A None offset starts near the end of the log, so attaching shows recent context only.
    """
    status = read_status_record()
    record = read_supervisor_record()
    lines: list[str] = []
    path = paths.supervisor_log()
    try:
        size = path.stat().st_size
    except OSError:
        return status, lines, 0, record
    if log_offset is None:
        log_offset = max(0, size - 4096)
    if size < log_offset:
        log_offset = 0  # rotated or truncated
    if size > log_offset:
        with path.open("rb") as fh:
            fh.seek(log_offset)
            chunk = fh.read(min(size - log_offset, 1_000_000))
        end = chunk.rfind(b"\n") + 1  # whole lines only; the rest comes next time
        lines = chunk[:end].decode("utf-8", "replace").splitlines()
        log_offset += end
    return status, lines, log_offset, record


class AttachedSupervisor(ServingController):
    """Follows and can stop a supervisor this launcher did not start."""

    owned = False
    poll_ms = 1000
    stop_grace_s = 45.0

    def __init__(self, record: SupervisorRecord, parent: QObject | None = None):
        super().__init__(parent)
        self.record = record
        self.pid = record.pid
        self.pgid = record.pgid or None
        self.url = record.url
        self._stop_sent_at: float | None = None
        self._killed = False
        self._polling = False
        self._log_offset: int | None = None
        self._record_config = record.config  # the record's config as last read (JSON)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._poll)
        self._state = ServingState.running
        self.running_config = config_from(record.config)

    def start_following(self) -> None:
        launcher_logger().info("found a running app (supervisor pid %s) at %s", self.pid, self.url)
        self._timer.start(self.poll_ms)
        self._poll()

    def running(self) -> bool:
        return pid_alive(self.pid)

    def start(self, config) -> bool:
        return False  # not ours to start: a new start makes a supervisor of its own

    def detach(self) -> bool:
        return True  # it was never ours: it keeps serving when this launcher quits

    def shutdown_now(self, wait_s: float = 10.0) -> None:
        pass  # the launcher's exit does not end an app it found running

    def stop(self) -> None:
        if self._stop_sent_at is not None or not self.running():
            return
        launcher_logger().info("stopping the running app (SIGTERM to supervisor pid %s)", self.pid)
        self._stop_sent_at = time.monotonic()
        self._set_state(ServingState.stopping)
        self.message_changed.emit("Stopping…")
        signal_group(None, self.pid, signal.SIGTERM)

    def _poll(self) -> None:
        if not self.running():
            self._timer.stop()
            # It is gone: whatever its group left behind goes too.
            if self.pgid:
                signal_group(self.pgid, None, signal.SIGKILL)
            self._set_state(ServingState.stopped)
            self.message_changed.emit("Stopped")
            return
        overdue = self._stop_sent_at is not None and time.monotonic() - self._stop_sent_at > self.stop_grace_s
        if overdue and not self._killed:
            self._killed = True
            launcher_logger().warning("the app did not stop in time; killing its process group")
            signal_group(self.pgid, self.pid, signal.SIGKILL)
        if not self._polling:
            self._polling = True
            offset = self._log_offset
            QueryOp(
                self,
                lambda: _read_update(offset),
                self._on_update,
                self._on_status_failed,
                what="Reading the app's status",
            ).run()

    def _on_status_failed(self, exc: BaseException) -> None:
        self._polling = False

    def _on_update(self, update: tuple[StatusRecord | None, list[str], int, SupervisorRecord | None]) -> None:
        self._polling = False
        status, lines, self._log_offset, record = update
        log = supervisor_logger()
        for line in lines:
            if line.strip():
                log.info("%s", line.rstrip())
        if record and record.pid == self.pid and record.config is not None and record.config != self._record_config:
            self._record_config = record.config  # validated once per change, not once a second
            self.set_running_config(config_from(record.config))  # e.g. after `gradio-serve apply`
        if not status or self._stop_sent_at is not None:
            return
        self._set_url(status.url)
        if "deployments" in status.model_fields_set:  # a status has been seen, not just an apply answer
            self.last_status = StatusEvent(app_status=status.app_status, deployments=status.deployments,
                                           machines=status.machines)
            self.status_changed.emit(self.last_status)
        state = state_for_phase(status.phase.value if status.phase else None)
        if state is not None and state is not ServingState.stopped:
            self._follow_phase(state)
