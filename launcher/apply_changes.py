"""Changing the running app in place ("Apply changes"): what differs, and waiting for the answer.

The form is compared with the config the supervisor serves. A change Serve can make in
place is sent with serving.core.apply_request (a file plus SIGUSR1, so a supervisor this
launcher owns and one it re-attached to are asked the same way); the answer is read from
the status record by a QTimer, one small file read per tick, and taken from the owned
supervisor's `applied` event when that comes first. Nothing here waits on the main thread.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

from PySide6.QtCore import QObject, QTimer, Signal

from launcher.serving_controller import ServingController, ServingState
from serving.core import apply_request
from serving.core.config import ConfigError, LaunchConfig
from serving.core.download_progress import describe_event
from serving.core.protocol import AppliedEvent, ApplyAnswer
from serving.core.records import read_status_record

# What each section that needs a restart means to someone looking at the window.
_RESTART_WORDS = {"http": "the port (HTTP settings)", "cluster": "the cluster"}


@dataclass(frozen=True)
class PendingChange:
    differs: bool = False
    restart: tuple[str, ...] = ()  # sections only a restart can change (apply_request.RESTART_ONLY)

    def restart_words(self) -> str:
        return " and ".join(_RESTART_WORDS.get(s, s) for s in self.restart)


def form_config(data: dict) -> LaunchConfig | dict:
    """The form's settings as a config once they validate; a half-typed form stays as it is."""
    try:
        return LaunchConfig.from_dict(data)
    except ConfigError:
        return data


def pending_change(running: LaunchConfig | None, wanted: LaunchConfig | dict) -> PendingChange:
    """How the form's config (`wanted`, or its JSON) differs from what the app serves (`running`, None: unknown)."""
    if running is None:
        return PendingChange()
    wanted = form_config(wanted) if isinstance(wanted, dict) else wanted
    if wanted == running:
        return PendingChange()
    wanted_json = wanted if isinstance(wanted, dict) else wanted.model_dump(mode="json")
    return PendingChange(True, tuple(apply_request.restart_needed(running.model_dump(mode="json"), wanted_json)))


@dataclass(frozen=True)
class ApplyOutcome:
    ok: bool
    message: str
    hint: str
    elapsed_s: float
    config: LaunchConfig
    answered: bool = True  # False: the app went away, or no answer came in time


class ApplyRequest(QObject):
    """One apply request to the running supervisor, from sending to its answer."""

    finished = Signal(object)  # ApplyOutcome, once
    progress = Signal(str)  # a Hub model the change needs, downloading first: "Downloading NAME: 45% · ..."

    poll_ms = 250
    timeout_s = 15 * 60.0  # a big model on a slow disk can take minutes to load

    def __init__(self, controller: ServingController, config: LaunchConfig, parent: QObject | None = None):
        super().__init__(parent)
        self.controller = controller
        self.config = config
        self.request_id: str | None = None
        self._started = 0.0
        self._done = False
        self._said = ""
        self._timer = QTimer(self, interval=self.poll_ms)
        self._timer.timeout.connect(self._poll)

    def start(self) -> None:
        """Send the request; OSError (ProcessLookupError included) when it cannot be delivered."""
        self._started = time.monotonic()
        self.request_id = apply_request.send(int(self.controller.pid), self.config.model_dump(mode="json"))
        self.controller.applied.connect(self._on_event)
        self._timer.start()

    def elapsed_s(self) -> float:
        return time.monotonic() - self._started

    def _on_event(self, event: AppliedEvent) -> None:
        if event.id == self.request_id:
            self._answer(event.answer())

    def _poll(self) -> None:
        answer = apply_request.result(self.request_id)
        if answer:
            self._answer(answer)
            return
        # The supervisor writes a change's download into its status record (an attached one's too).
        status = read_status_record()
        if status is not None and status.download is not None:
            said = describe_event(status.download.as_json())
            if said != self._said:
                self._said = said
                self.progress.emit(said)
        if self.controller.state is not ServingState.running:
            self._finish(False, "the app stopped before the change was made", "", answered=False)
        elif self.elapsed_s() > self.timeout_s:
            self._finish(
                False,
                f"no answer from the app within {self.timeout_s / 60:.0f} minutes",
                "It may still be loading the models: check the log; Stop and Start it if it does not recover.",
                answered=False,
            )

    def _answer(self, answer: ApplyAnswer) -> None:
        self._finish(answer.ok, answer.message, answer.hint)

    def _finish(self, ok: bool, message: str, hint: str, answered: bool = True) -> None:
        if self._done:
            return
        self._done = True
        self._timer.stop()
        with contextlib.suppress(RuntimeError, TypeError):  # already gone with the controller
            self.controller.applied.disconnect(self._on_event)
        self.finished.emit(ApplyOutcome(ok, message, hint, self.elapsed_s(), self.config, answered))
