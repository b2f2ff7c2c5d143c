"""What the window needs from whatever runs the app: the states it can be in, and one interface
(signals, start, stop, detach) for the supervisor this launcher starts (launcher/supervisor_process.py)
and one it finds running (launcher/attached.py), so no caller asks which it is.

Its signals carry the core's models (serving/core/protocol.py, serving/core/config.py), not JSON:
a configuration that comes from the supervisor (its record, an `applied` answer) is validated once,
here, and compared as an object from then on."""

from __future__ import annotations

import enum

from PySide6.QtCore import QObject, Signal

from launcher.logs import launcher_logger
from serving.core.config import ConfigError, LaunchConfig
from serving.core.events import Phase
from serving.core.protocol import StatusEvent
from serving.core.records import read_supervisor_record


class ServingState(str, enum.Enum):
    stopped = "stopped"
    starting = "starting"
    running = "running"
    stopping = "stopping"
    error = "error"


_PHASE_STATE = {
    Phase.validating.value: ServingState.starting,
    Phase.downloading.value: ServingState.starting,  # a start's model download (the status record's phase)
    Phase.starting_cluster.value: ServingState.starting,
    Phase.deploying.value: ServingState.starting,
    Phase.running.value: ServingState.running,
    Phase.stopping.value: ServingState.stopping,
    Phase.stopped.value: ServingState.stopped,
    Phase.error.value: ServingState.error,
}


def state_for_phase(phase: str | None) -> ServingState | None:
    return _PHASE_STATE.get(phase or "")


def config_from(data: dict | None) -> LaunchConfig | None:
    """The LaunchConfig a supervisor says it serves (its record's or an answer's JSON); None when it says
    none, or one this launcher cannot read (a newer supervisor's): the form then keeps its own."""
    if not data:
        return None
    try:
        return LaunchConfig.from_dict(data)
    except ConfigError as exc:
        launcher_logger().warning("the running app's settings cannot be read here: %s", exc)
        return None


class ServingController(QObject):
    """What the window needs from whatever runs the app (owned process or a detached one)."""

    state_changed = Signal(str)  # ServingState value
    status_changed = Signal(object)  # StatusEvent: the latest one
    metrics_changed = Signal(object)  # MetricsEvent: what each deployment is doing, every ~2 s
    message_changed = Signal(str)  # the latest phase message, for the status line
    phase_changed = Signal(str, str)  # (phase, message) as the supervisor says it (serving/core/events.py)
    error_reported = Signal(str, str)  # message, hint
    url_changed = Signal(str)
    changing_changed = Signal(bool)  # a change (an apply, or its rollback) is being deployed
    applied = Signal(object)  # AppliedEvent: the answer to an apply request (serving/core/apply_request.py)
    download_progress = Signal(object)  # DownloadEvent: a Hub model fetched before deploying
    running_config_changed = Signal(object, object)  # (LaunchConfig | None, LaunchConfig): what the app serves

    owned = True  # False for a supervisor another launcher left running

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._state = ServingState.stopped
        self.url: str | None = None
        self.pid: int | None = None
        self.pgid: int | None = None
        self.last_status: StatusEvent | None = None
        self.last_error: tuple[str, str] | None = None
        self.changing = False
        self.running_config: LaunchConfig | None = None  # what the app serves now

    @property
    def state(self) -> ServingState:
        return self._state

    def is_active(self) -> bool:
        """Something is running (or on its way up or down)."""
        return self._state in (ServingState.starting, ServingState.running, ServingState.stopping)

    def _set_state(self, state: ServingState) -> None:
        if state is not ServingState.running:
            self._set_changing(False)
        if state is not self._state:
            self._state = state
            self.state_changed.emit(state.value)

    def _follow_phase(self, state: ServingState) -> None:
        """Take the state a phase names. `deploying` after `running` is a change being applied
        (or rolled back): the app keeps answering meanwhile, so it stays running, marked changing."""
        if state is ServingState.starting and self._state is ServingState.running:
            self._set_changing(True)
            return
        if state is ServingState.running:
            self._set_changing(False)
        self._set_state(state)

    def _set_changing(self, changing: bool) -> None:
        if changing != self.changing:
            self.changing = changing
            self.changing_changed.emit(changing)

    def set_running_config(self, config: LaunchConfig | None) -> None:
        if config is not None and config != self.running_config:
            before, self.running_config = self.running_config, config
            self.running_config_changed.emit(before, config)

    def reload_running_config(self) -> None:
        """Take the config from the supervisor record (rewritten after an apply, e.g. `gradio-serve apply`)."""
        record = read_supervisor_record()  # one small file
        if record and record.pid == self.pid:
            self.set_running_config(config_from(record.config))

    def _set_url(self, url: str | None) -> None:
        if url and url != self.url:
            self.url = url
            self.url_changed.emit(url)

    # One interface for the owned supervisor and one found running, so no caller asks which it is.

    def start(self, config: LaunchConfig) -> bool:
        """Start serving `config`; False (and nothing done) if this controller cannot or is already running."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the app (gracefully, then forcefully after a grace period); idempotent."""
        raise NotImplementedError

    def detach(self) -> bool:
        """Leave the app serving after this launcher exits; False if it is stopping already."""
        raise NotImplementedError

    def shutdown_now(self, wait_s: float = 10.0) -> None:
        """Exit path: end what this launcher owns now (blocks up to wait_s); what it does not own lives on."""
        raise NotImplementedError
