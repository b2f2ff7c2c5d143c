"""One serving session: check, confirm, start, apply, restart, stop and quit, in one state.

The window draws; the session decides. Its one state (`SessionState`) says what it is
doing on top of what the controller (the supervisor, owned or found running) reports:
checking before a start, asking whether to start what may not fit, waiting for the page
to open it in the browser, applying a change, restarting, quitting. Every change of
either is announced with `changed`; the controller's own reports are passed on, so the
window connects once, whichever controller runs the app.

It reads the configuration from the form (launcher/config_form.py) each time it needs
one, so a restart starts with what the form shows then. Nothing here blocks: checks run
in workers (launcher/worker.py), questions are asked through signals the window answers.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Signal

from launcher import prestart
from launcher.app_inspector import short_name
from launcher.apply_changes import ApplyOutcome, ApplyRequest, PendingChange, form_config, pending_change
from launcher.attached import AttachedSupervisor
from launcher.browser import BrowserOpener, open_url
from launcher.config_form import ConfigForm
from launcher.errors import show_error
from launcher.logs import launcher_logger
from launcher.serving_controller import ServingController, ServingState
from launcher.supervisor_process import SupervisorProcess
from launcher.worker import QueryOp
from serving.core.config import LaunchConfig, Mode
from serving.core.inspection import Inspection
from serving.core.protocol import SupervisorRecord

_INVALID = {
    "start": ("started", "Fix the value named above and press Start again."),
    "apply": ("applied", "Fix the value named above and press Apply again; the app keeps serving its current settings."),
}


def served(config: LaunchConfig) -> str:
    """What a config serves, in a few words: the models, or your app's file."""
    if config.app is not None:
        return short_name(config.app.target)
    return ", ".join(slot.model for slot in config.models)


class SessionState(str, enum.Enum):
    idle = "idle"  # nothing under way: the controller's state is the whole story
    checking = "checking"  # before a start: your app's import check, then models, port and memory
    confirming = "confirming"  # asking whether to start what may not fit (or be slow)
    opening = "opening"  # started; the page opens in the browser once the app runs
    applying = "applying"  # a change is on its way to the running app
    restarting = "restarting"  # stopping, to start again with the form's settings
    quitting = "quitting"  # stopping (or leaving it serving) before the launcher quits


class Session(QObject):
    changed = Signal()  # the session's state, or the controller's (state, url, changing): redraw
    status_changed = Signal(object)  # StatusEvent: the controller's latest
    metrics_changed = Signal(object)  # MetricsEvent: the controller's figures, every ~2 s
    phase_changed = Signal(str, str)  # (phase, message) as the supervisor says it
    download_progress = Signal(object)  # DownloadEvent: the controller's, as it comes
    message_changed = Signal(str)  # a line for the status panel
    notice = Signal(str)  # a short line for the status bar
    start_began = Signal(object)  # LaunchConfig: checks begin (the window shows the steps)
    launched = Signal(object)  # LaunchConfig handed to the supervisor
    confirm_wanted = Signal(list, object)  # (warnings, headline or None): answer with confirm()
    restart_wanted = Signal(object)  # PendingChange: answer with restart()
    settings_changed = Signal()  # what is served became the baseline: save the settings
    quit_requested = Signal(bool)  # keep_serving; app.py ends the event loop

    def __init__(
        self,
        form: ConfigForm,
        controller_factory: Callable[[QObject], ServingController] | None = None,
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self.form = form
        # Makes the controller a start runs with (tests put a fake supervisor here).
        self.controller_factory = controller_factory or (lambda owner: SupervisorProcess(owner))
        self.controller: ServingController | None = None
        self.state = SessionState.idle
        self.open_browser = False  # open the page once a start runs (the window's checkbox)
        self.browser = BrowserOpener(self, opener=open_url)
        self._starting: LaunchConfig | None = None  # what a start is checking or asking about
        self._request: ApplyRequest | None = None  # the apply request waiting for its answer
        form.refused.connect(self._on_refused)

    # ---- what the window draws from ------------------------------------------------

    def serving_state(self) -> ServingState:
        return self.controller.state if self.controller is not None else ServingState.stopped

    def url(self) -> str | None:
        return self.controller.url if self.controller is not None else None

    def checking(self) -> bool:
        """A start is being checked (or asked about): Start waits, the form is held."""
        return self.state in (SessionState.checking, SessionState.confirming)

    def changing(self) -> bool:
        """A change is on its way to the running app (ours, or a rollback, or `gradio-serve apply`)."""
        return self.state is SessionState.applying or (self.controller is not None and self.controller.changing)

    def editable(self) -> bool:
        """Settings can be edited when stopped, and while running (then applied with Apply changes)."""
        if self.checking() or self.changing():
            return False
        return self.serving_state() in (ServingState.stopped, ServingState.error, ServingState.running)

    def _set(self, state: SessionState) -> None:
        self.state = state
        self.changed.emit()

    # ---- start ---------------------------------------------------------------------

    def start(self, interactive: bool = True) -> None:
        """Validate, check, then start. Idempotent: does nothing while serving or checking."""
        if self.checking() or (self.controller is not None and self.controller.is_active()):
            return
        config = self.form.validate("start")
        if config is None:
            return
        self.form.set_base(config)
        self._starting = config
        self.settings_changed.emit()
        self.start_began.emit(config)
        self._set(SessionState.checking)
        if config.mode is Mode.app:
            # Whether the file loads is known from the app row's check (run again if the file changed).
            self.notice.emit(f"Checking {served(config)}…")
            self.form.app_row.when_checked(lambda result: self._after_app_check(config, result, interactive))
            return
        self._prestart(config, interactive)

    def _after_app_check(self, config: LaunchConfig, result: Inspection, interactive: bool) -> None:
        if self.state is not SessionState.checking or self._starting is not config:
            return  # given up meanwhile
        if result.refuses_start:
            self._set(SessionState.idle)
            show_error(f"Your app cannot be started: {result.error}.", (result.hint or "Fix it") + "; then press Start again.")
            return
        self._prestart(config, interactive)

    def _prestart(self, config: LaunchConfig, interactive: bool) -> None:
        self.notice.emit("Checking models, port and memory…" if config.models else "Checking port and memory…")
        QueryOp(
            self,
            lambda: prestart.prestart_check(config),
            lambda report: self._after_check(config, report, interactive),
            self._check_failed,
            what="Checking before start",
        ).run()

    def _check_failed(self, exc: BaseException) -> None:
        self._set(SessionState.idle)
        show_error(
            f"Could not check the settings before starting: {exc}",
            "Try again; the log has the details.",
            detail=getattr(exc, "__traceback_text__", repr(exc)),
        )

    def _after_check(self, config: LaunchConfig, report: prestart.PrestartReport, interactive: bool) -> None:
        self.form.set_memory_available(report.memory_available)
        refusal = report.refusal(config.http.port)
        if refusal is not None:
            self._set(SessionState.idle)
            show_error(*refusal)
            return
        warnings = self.form.resource_warnings(config, report.memory_available, report.choices)
        fits = not warnings
        warnings += self.form.precision_warnings(config)
        if warnings and interactive:
            self._set(SessionState.confirming)
            self.confirm_wanted.emit(warnings, "This may be slow on this machine." if fits else None)
            return
        for w in warnings:
            launcher_logger().warning("%s", w)
        self._launch(config)

    def confirm(self, start: bool) -> None:
        """The answer to confirm_wanted: start anyway, or not."""
        config = self._starting
        if self.state is not SessionState.confirming or config is None:
            return
        if start:
            self._launch(config)
        else:
            self._set(SessionState.idle)
            self.notice.emit("Start cancelled.")

    def _launch(self, config: LaunchConfig) -> None:
        self._starting = None
        if self.controller is None or not self.controller.owned:
            self._set_controller(self.controller_factory(self))  # one found running cannot start another
        self.launched.emit(config)
        self.state = SessionState.opening if self.open_browser else SessionState.idle
        self.controller.start(config)
        self.changed.emit()

    def _set_controller(self, controller: ServingController) -> None:
        if self.controller is not None:
            self.controller.deleteLater()
        self.controller = controller
        controller.state_changed.connect(self._on_serving_state)
        controller.status_changed.connect(self.status_changed)
        controller.metrics_changed.connect(self.metrics_changed)
        controller.message_changed.connect(self.message_changed)
        controller.phase_changed.connect(self.phase_changed)
        controller.download_progress.connect(self.download_progress)
        controller.url_changed.connect(lambda _url: self._follow())
        controller.error_reported.connect(self._on_supervisor_error)
        controller.changing_changed.connect(lambda _changing: self.changed.emit())
        controller.running_config_changed.connect(self._on_running_config_changed)

    def attach(self, record: SupervisorRecord) -> None:
        """Follow an app an earlier launch left serving (and show what it serves)."""
        controller = AttachedSupervisor(record, self)
        if controller.running_config is not None:  # else the form keeps the saved settings; the status still shows
            self.form.apply_config(controller.running_config)
        self._set_controller(controller)
        self.changed.emit()
        self.message_changed.emit(f"Serving (started earlier, supervisor pid {controller.pid}).")
        controller.start_following()

    # ---- following the app ----------------------------------------------------------

    def _on_serving_state(self, _state: str) -> None:
        """The controller's state changed: a stop or a failure ends what was waiting for it."""
        state = self.serving_state()
        if state in (ServingState.stopped, ServingState.error):
            self.browser.cancel()
            if self.state is SessionState.quitting:
                self.quit_requested.emit(False)
            elif self.state is SessionState.restarting:
                self.state = SessionState.idle
                if state is ServingState.stopped:
                    QTimer.singleShot(0, self, self.start)  # the rest of the restart, with the form's settings
            elif self.state is SessionState.opening:
                self.state = SessionState.idle
        self._follow()

    def _follow(self) -> None:
        """Open the page once a start we made runs at a URL; redraw."""
        url = self.url()
        if self.serving_state() is ServingState.running and url and self.state is SessionState.opening:
            self.state = SessionState.idle
            self.browser.open_when_ready(url)
        self.changed.emit()

    def _on_supervisor_error(self, message: str, hint: str) -> None:
        show_error(message, hint or "The log view has the supervisor's output.")

    def _on_refused(self, purpose: str, message: str) -> None:
        if purpose in _INVALID:
            verb, fix = _INVALID[purpose]
            show_error(f"The settings cannot be {verb} as they are:\n" + message.removeprefix("invalid configuration:\n"), fix)

    def _on_running_config_changed(self, before: LaunchConfig | None, after: LaunchConfig) -> None:
        """The app's settings changed (our Apply, or `gradio-serve apply`): an unedited form follows them."""
        form = form_config(self.form.config_dict())
        if self.state is not SessionState.applying and form != after and before is not None and form == before:
            self.form.apply_config(after)
            launcher_logger().info("the running app's settings changed elsewhere; the form shows them")
        self.changed.emit()

    # ---- stop, restart, apply --------------------------------------------------------

    def stop(self) -> None:
        self.browser.cancel()
        if self.state is SessionState.opening:
            self._set(SessionState.idle)
        if self.controller is not None:
            self.controller.stop()

    def restart(self) -> None:
        """Stop, then Start with the form's settings once stopped."""
        if self.controller is None or self.serving_state() is not ServingState.running:
            return
        self._set(SessionState.restarting)
        self.notice.emit("Restarting with the new settings…")
        self.stop()

    def pending(self) -> PendingChange:
        """How the form differs from what the running app serves (nothing while it does not run)."""
        controller = self.controller
        if controller is None or controller.state is not ServingState.running or controller.running_config is None:
            return PendingChange()
        return pending_change(controller.running_config, self.form.config_dict())

    def apply(self) -> None:
        """Carry the form's settings to the running app: in place when Serve can, else ask to restart."""
        controller = self.controller
        if controller is None or controller.state is not ServingState.running or self.changing():
            return
        config = self.form.validate("apply")
        if config is None:
            return
        if config.mode is Mode.app:
            checked = self.form.app_row.current_result()
            if checked is None:  # not checked since it was edited: check, then come back
                self.notice.emit(f"Checking {served(config)}…")
                self.form.app_row.when_checked(lambda _result: self.apply())
                return
            if checked.refuses_start:
                show_error(f"Your app cannot be applied: {checked.error}.",
                           (checked.hint or "Fix it") + "; the app keeps serving its current version meanwhile.")
                return
        change = pending_change(controller.running_config, config)
        if not change.differs:
            self.notice.emit("Nothing to apply: the app already serves these settings.")
            return
        if change.restart:
            self.restart_wanted.emit(change)
            return
        for warning in self.form.resource_warnings(config) + self.form.precision_warnings(config):
            launcher_logger().warning("%s", warning)
        request = ApplyRequest(controller, config, self)
        try:
            if not controller.pid:
                raise ProcessLookupError("the supervisor's pid is not known yet")
            request.start()
        except OSError as exc:
            request.deleteLater()
            show_error(
                f"Could not ask the running app to change: {exc.strerror or exc}.",
                "Check the status above; if the app is gone, press Start.",
            )
            return
        self._request = request
        request.finished.connect(self._on_applied)
        request.progress.connect(lambda said: self.notice.emit(f"Applying changes: {said}"))
        launcher_logger().info("applying to the running app: %s", served(config))
        self.notice.emit(f"Applying changes ({served(config)})…")
        self._set(SessionState.applying)

    def _on_applied(self, outcome: ApplyOutcome) -> None:
        request, self._request = self._request, None
        if request is not None:
            request.deleteLater()
        if self.state is SessionState.applying:
            self.state = SessionState.idle
        if outcome.ok:
            self.form.set_base(outcome.config)
            if self.controller is not None:
                self.controller.set_running_config(outcome.config)
            self.settings_changed.emit()
            text = f"Applied in {outcome.elapsed_s:.1f} s: {served(outcome.config)}"
            launcher_logger().info("%s", text)
            self.notice.emit(text)
        elif not outcome.answered and self.serving_state() is not ServingState.running:
            # Stopped (by the user) or failed (the controller reports that itself).
            launcher_logger().info("the changes were not applied: %s", outcome.message)
            self.notice.emit(f"The changes were not applied: {outcome.message}.")
        else:
            show_error(
                f"The changes were not applied: {outcome.message}.",
                outcome.hint or "The previous settings keep serving; change the settings and press Apply again.",
            )
        self.changed.emit()

    def revert(self) -> None:
        """Put what the app serves back in the form."""
        config = self.controller.running_config if self.controller is not None else None
        if config is None:
            return
        self.form.apply_config(config)
        self.form.edited.emit()

    # ---- quit ------------------------------------------------------------------------

    def quit(self, keep_serving: bool = False) -> None:
        """Quit; stop serving first unless keep_serving (the app is then found by the next launch)."""
        self.settings_changed.emit()
        controller = self.controller
        if controller is None or not controller.is_active():
            self._set(SessionState.quitting)
            self.quit_requested.emit(False)
            return
        if keep_serving:
            if not controller.detach():
                return  # stopping already: a plain quit will follow
            self._set(SessionState.quitting)
            self.quit_requested.emit(True)
            return
        self._set(SessionState.quitting)
        self.notice.emit("Stopping before quitting…")
        self.message_changed.emit("Stopping before quitting…")
        controller.stop()
        if controller.state in (ServingState.stopped, ServingState.error):
            self.quit_requested.emit(False)
