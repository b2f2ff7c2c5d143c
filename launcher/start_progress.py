"""A start's progress in words a user knows, for every mode.

    Checking the configuration → Starting Ray → Starting the app (1 of 2 replicas ready) → Ready
                                                 (Loading t5-small (0 of 1 replica ready), for models)

Derived from what the supervisor already says (serving/core/events.py): its phase events, and in
`deploying` the replica counts of its status events (replicas_running / replicas_target summed
over the deployments that hold the app or a model; Serve's proxy and Gradio ingress are
plumbing). The window's own check before the supervisor starts counts as the first step.
Ray's raw output stays one click away: "Show log" brings the log view forward.
"""

from __future__ import annotations

from PySide6.QtCore import QElapsedTimer, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QVBoxLayout, QWidget

from launcher.icons import STATE_COLOURS
from serving.core.download_progress import describe_event, percent
from serving.core.protocol import DownloadEvent, StatusEvent

# Where each step starts on the bar (0-100); deploying fills the rest with replicas ready.
_CHECKING, _CLUSTER, _DEPLOYING, _READY = 5, 15, 30, 100
READY_SHOWN_MS = 4000  # "Ready" stays a moment, then the bar makes room


def replica_counts(event: StatusEvent) -> tuple[int, int, list[str]]:
    """(running, target, names) over the deployments that run the app or a model."""
    deployments = event.deployments
    mine = [d for d in deployments if d.model or d.name == "app"] or deployments
    running = sum(d.replicas_running for d in mine)
    target = sum(d.replicas_target for d in mine)
    names = [d.label or d.model or d.name or "?" for d in mine]
    return running, target, names


class StartProgress(QWidget):
    show_log_requested = Signal()
    step_changed = Signal(str, int)  # (words, percent), each time either moves

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._active = False  # a start is being followed
        self._launched = False  # the supervisor has started (a failure then is a failed start, not a refusal)
        self._app = False
        self._remote = False
        self._names: list[str] = []
        self._step = ""
        self._plain = ""
        self._doing = ""  # the step in a phrase: "starting Ray" (for "Failed while starting Ray")

        self.words = QLabel()
        self.words.setObjectName("startWords")
        self.elapsed = QLabel()
        self.elapsed.setEnabled(False)  # dimmed
        self.log_link = QLabel("<a href='log'>Show log</a>")
        self.log_link.setToolTip("Ray's and the app's own output, as it comes")
        self.log_link.linkActivated.connect(lambda _link: self.show_log_requested.emit())
        self.bar = QProgressBar()
        self.bar.setRange(0, 100)
        self.bar.setTextVisible(False)
        self.bar.setMaximumHeight(10)
        self._bar_palette = self.bar.palette()

        line = QHBoxLayout()
        line.setContentsMargins(0, 0, 0, 0)
        line.addWidget(self.words, 1)
        line.addWidget(self.elapsed)
        line.addSpacing(8)
        line.addWidget(self.log_link)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 2, 0, 2)
        layout.setSpacing(2)
        layout.addLayout(line)
        layout.addWidget(self.bar)

        self._clock = QElapsedTimer()
        self._tick = QTimer(self, interval=1000)
        self._tick.timeout.connect(self._show_elapsed)
        self._hide_later = QTimer(self, singleShot=True, interval=READY_SHOWN_MS)
        self._hide_later.timeout.connect(self._finish)
        self.setVisible(False)

    # ---- what the window tells it ------------------------------------------------------

    def begin(self, app: bool, remote: bool = False, names: list[str] | None = None) -> None:
        """Start pressed: follow this start (the window's own checks come first)."""
        self._active, self._launched = True, False
        self._app, self._remote, self._names = app, remote, list(names or [])
        self._hide_later.stop()
        self._clock.start()
        self._tick.start()
        self._show_elapsed()
        self._set("Checking the configuration", _CHECKING, doing="checking the configuration")
        self.setVisible(True)

    def cancel(self) -> None:
        """The start did not happen (refused before the supervisor started, or stopped)."""
        self._finish()

    def follow_phase(self, phase: str, _message: str = "") -> None:
        if not self._active:
            return  # a change applied to a running app is shown by the state line, not here
        self._launched = True
        if phase == "validating":
            self._set("Checking the configuration", _CHECKING, doing="checking the configuration")
        elif phase == "starting_cluster":
            if self._remote:
                self._set("Connecting to the Ray cluster", _CLUSTER, doing="connecting to the Ray cluster")
            else:
                self._set("Starting Ray", _CLUSTER, doing="starting Ray")
        elif phase == "deploying":
            if self._step != "deploying":
                self._set(self._deploy_words(None), _DEPLOYING, step="deploying", doing=self._deploy_doing())
        elif phase == "running":
            self._ready()
        elif phase == "error":
            self._failed()  # before the state passes through "stopping" while the supervisor cleans up
        elif phase in ("stopping", "stopped"):
            self._finish()

    def follow_status(self, event: StatusEvent) -> None:
        if not self._active or self._step != "deploying":
            return
        running, target, names = replica_counts(event)
        if names and not self._app:
            self._names = names
        fraction = min(1.0, running / target) if target else 0.0
        self._set(self._deploy_words((running, target)), _DEPLOYING + int((_READY - _DEPLOYING - 5) * fraction),
                  step="deploying", doing=self._deploy_doing())

    def follow_download(self, event: DownloadEvent) -> None:
        """A Hub model coming before the deploy: the bar is the download's own, as LM Studio's."""
        if not self._active:
            return
        self._launched = True
        self._set(describe_event(event.as_json()), percent(event.done_bytes, event.total_bytes), step="downloading",
                  doing=f"downloading {event.model}")

    def follow_state(self, state: str, checking: bool = False) -> None:
        """The window's state (ServingState values), with whether its pre-start check runs."""
        if not self._active:
            return
        if state == "starting":
            self._launched = True
        elif state == "running":
            self._ready()
        elif state == "error" and self._launched:
            self._failed()
        elif state in ("stopped", "stopping", "error") and not checking:
            self._finish()

    # ---- for tests and the tray --------------------------------------------------------

    def words_text(self) -> str:
        return self._plain

    def value(self) -> int:
        return self.bar.value()

    def active(self) -> bool:
        return self._active

    # ---- inside ----------------------------------------------------------------------------

    def _deploy_words(self, counts: tuple[int, int] | None) -> str:
        if self._app:
            text = "Starting the app"
        else:
            shown = ", ".join(self._names[:3]) + (f" and {len(self._names) - 3} more" if len(self._names) > 3 else "")
            text = f"Loading {shown}" if shown else "Loading the models"
        if counts and counts[1]:
            running, target = counts
            text += f" ({running} of {target} {'replica' if target == 1 else 'replicas'} ready)"
        else:
            text += "…"
        return text

    def _deploy_doing(self) -> str:
        return "starting the app" if self._app else "loading the models"

    def _ready(self) -> None:
        self._set("Ready", _READY, step="ready")
        self._active = False
        self._tick.stop()
        self._hide_later.start()

    def _failed(self) -> None:
        self._set(f"Failed while {self._doing or 'starting'} (the message says why; the log has the rest)",
                  self.bar.value(), step="failed", colour=STATE_COLOURS["error"])
        self._active = False
        self._tick.stop()  # stays shown, at the step that failed, until the next Start

    def _finish(self) -> None:
        self._active = False
        self._tick.stop()
        self._hide_later.stop()
        self._step = ""
        self.setVisible(False)

    def _set(self, text: str, value: int, step: str | None = None, colour: str | None = None,
             doing: str | None = None) -> None:
        value = max(0, min(100, value))
        moved = (text, value) != (self._plain, self.bar.value())
        self._step = step or text
        self._plain = text
        if doing:
            self._doing = doing
        if colour:
            self.words.setText(f"<span style='color:{colour}'>{text}</span>")
        else:
            self.words.setText(text)
        self.words.setTextFormat(Qt.TextFormat.RichText if colour else Qt.TextFormat.PlainText)
        self.bar.setValue(value)
        palette = QPalette(self._bar_palette)
        if colour:
            palette.setColor(QPalette.ColorRole.Highlight, QColor(colour))
        self.bar.setPalette(palette)
        if moved:
            self.step_changed.emit(text, value)

    def _show_elapsed(self) -> None:
        seconds = self._clock.elapsed() // 1000 if self._clock.isValid() else 0
        self.elapsed.setText(f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds} s")
