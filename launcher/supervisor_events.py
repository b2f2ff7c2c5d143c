"""What the supervisor says (its events, serving/core/protocol.py), turned into the controller's state and
signals: one handler per kind of event, looked up in a table. The QProcess around it
(launcher/supervisor_process.py) knows nothing of what its child says, as qutebrowser's guiprocess."""

from __future__ import annotations

from typing import ClassVar

from PySide6.QtCore import QTimer

from launcher.logs import supervisor_logger
from launcher.serving_controller import ServingController, ServingState, config_from, state_for_phase
from serving.core.protocol import (
    AppliedEvent,
    DownloadEvent,
    ErrorEvent,
    Event,
    LogEvent,
    MetricsEvent,
    PhaseEvent,
    StatusEvent,
    parse_event,
)


class SupervisorEvents(ServingController):
    """The event side of an owned supervisor. Needs `_final_phase` and `_stop_requested` of the process."""

    def handle_event(self, event: Event | dict) -> None:
        """One event from the supervisor (a model, or its JSON as the tests' fakes send it)."""
        if isinstance(event, dict):
            parsed = parse_event(event)
            if parsed is None:
                supervisor_logger().info("%s", event)  # not one of ours: still worth seeing
                return
            event = parsed
        handler = self._HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)

    def _on_phase(self, event: PhaseEvent) -> None:
        if event.pid:
            self.pid = event.pid
        if event.pgid:
            self.pgid = event.pgid
        self._set_url(event.url)
        message = event.message or event.phase.value
        supervisor_logger().info("[%s] %s", event.phase.value, message)
        self.message_changed.emit(message)
        self.phase_changed.emit(event.phase.value, message)
        state = state_for_phase(event.phase.value)
        if state in (ServingState.stopped, ServingState.error):
            # Final only once the process has exited (it still cleans up after saying so);
            # until then it is stopping. _on_finished settles the state.
            self._final_phase = state
            state = ServingState.stopping
        if state is not None and not (
            self._stop_requested and state in (ServingState.running, ServingState.starting)
        ):
            self._follow_phase(state)

    def _on_status(self, event: StatusEvent) -> None:
        self.last_status = event
        self.status_changed.emit(event)

    def _on_error(self, event: ErrorEvent) -> None:
        self.last_error = (event.message, event.hint)
        supervisor_logger().error("error: %s%s", event.message, f" (hint: {event.hint})" if event.hint else "")
        self.error_reported.emit(event.message, event.hint)

    def _on_log(self, event: LogEvent) -> None:
        level = {"warning": 30, "error": 40}.get(event.level, 20)
        supervisor_logger().log(level, "%s", event.message)

    def _on_applied(self, event: AppliedEvent) -> None:
        ok, message, hint = event.ok, event.message, event.hint
        supervisor_logger().log(20 if ok else 30, "%s%s", message if ok else f"not applied: {message}",
                                f" ({hint})" if hint else "")
        self.applied.emit(event)
        if ok and event.config is not None:
            self.set_running_config(config_from(event.config))  # what runs now, said with the answer
        elif ok:
            # A supervisor that does not say it (the tests' fakes) rewrites its record just after
            # answering: read it once that is done.
            QTimer.singleShot(1000, self, self.reload_running_config)

    def _on_download(self, event: DownloadEvent) -> None:
        self.download_progress.emit(event)

    def _on_metrics(self, event: MetricsEvent) -> None:
        self.metrics_changed.emit(event)

    _HANDLERS: ClassVar[dict] = {PhaseEvent: _on_phase, StatusEvent: _on_status, ErrorEvent: _on_error, LogEvent: _on_log,
                               AppliedEvent: _on_applied, DownloadEvent: _on_download,
                               MetricsEvent: _on_metrics}
