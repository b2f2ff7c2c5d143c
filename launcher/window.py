"""The main window: the form, Start/Stop/Open/Apply, the state, status and log, the tray.

It wires three parts together and draws what they say: the form (launcher/config_form.py)
edits the launch configuration, the session (launcher/session.py) checks, starts, applies,
restarts, stops and quits, and the dialogs (launcher/dialogs.py) ask the questions the
session raises. Every start shows its steps in words (launcher/start_progress.py); while
the app runs the form stays editable, and "Apply changes" carries the difference over
(in place, or by a restart when only a restart can: port, cluster).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from PySide6.QtCore import QByteArray, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMainWindow, QPushButton, QVBoxLayout, QWidget

from launcher import dialogs, errors, machine, model_catalog
from launcher import settings as settings_mod
from launcher.apply_changes import PendingChange
from launcher.config_form import ConfigForm
from launcher.errors import show_error
from launcher.icons import app_icon
from launcher.launch_options import LaunchOptions
from launcher.log_view import open_logs_folder
from launcher.py_drops import PyFileDrops
from launcher.serving_controller import ServingController, ServingState
from launcher.session import Session, SessionState
from launcher.settings import Settings
from launcher.start_progress import StartProgress
from launcher.state_words import apply_button_words, pending_line, plain, state_changing, state_line
from launcher.status_panel import StatusAndLog
from launcher.tray import Tray
from launcher.worker import QueryOp
from serving.core.config import ConfigError, LaunchConfig
from serving.core.inspection import Inspection
from serving.core.protocol import SupervisorRecord

__all__ = ["TITLE", "MainWindow"]

TITLE = "Gradio Serve Launcher"


class MainWindow(QMainWindow):
    quit_requested = Signal(bool)  # keep_serving; app.py ends the event loop

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        open_browser: bool | None = None,
        controller_factory: Callable[[QObject], ServingController] | None = None,
    ):
        super().__init__()
        self.settings = settings or Settings()
        self._open_browser_override = open_browser  # --no-browser, this session only
        self._pending = PendingChange()  # the last verdict, kept while the form is half-built

        self.setWindowTitle(TITLE)
        self.setWindowIcon(app_icon())
        self._save_timer = QTimer(self, singleShot=True, interval=500)
        self._save_timer.timeout.connect(self.save_settings)

        self.options = LaunchOptions(self._open_browser_default())
        self.form = ConfigForm(self.settings.config, self.settings.recent_apps, beside_port=self.options)
        self.session = Session(self.form, controller_factory, self)
        self.session.open_browser = self.options.open_browser_box.isChecked()
        self.browser = self.session.browser
        self._build_actions()
        self._build_ui()
        self.tray = Tray([self.start_action, self.stop_action, self.open_action, None, self.show_action,
                          self.logs_action, None, self.quit_keep_action, self.quit_action], self)
        self.tray.activated.connect(self.toggle_visible)
        self.tray.show()
        errors.set_presenter(self.show_status_line, self)

        if self.settings.geometry:
            self.restoreGeometry(QByteArray.fromBase64(self.settings.geometry.encode()))
        self._wire()
        self._draw()

        # Slow look-ups go to workers; the window is usable at once with what is known.
        QueryOp(self, machine.probe, self.form.set_machine, what="Detecting CPUs, memory and GPUs").run()
        QueryOp(self, model_catalog.load_choices, self.form.set_choices, self._on_catalog_failed,
                what="Listing models").run()

    # ---- construction -----------------------------------------------------

    def _build_actions(self) -> None:
        self.start_action = QAction("Start", self, triggered=lambda: self.start_serving())
        self.stop_action = QAction("Stop", self, triggered=self.stop_serving)
        self.open_action = QAction("Open in browser", self, triggered=self.open_in_browser)
        self.show_action = QAction("Show window", self, triggered=self.bring_forward)
        self.logs_action = QAction("Open logs folder", self, triggered=open_logs_folder)
        self.quit_keep_action = QAction("Quit, keep serving", self, triggered=lambda: self.request_quit(True))
        self.quit_action = QAction("Quit", self, triggered=lambda: self.request_quit(False))
        self.quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        self.addAction(self.quit_action)
        self.load_config_action = QAction("Load configuration…", self, triggered=self.load_config_file)
        self.save_config_action = QAction("Save configuration as…", self, triggered=self.save_config_file)

        menu = self.menuBar().addMenu("&File")
        menu.addAction(self.load_config_action)
        menu.addAction(self.save_config_action)
        menu.addSeparator()
        menu.addAction(self.logs_action)
        menu.addSeparator()
        menu.addAction(self.quit_keep_action)
        menu.addAction(self.quit_action)

    def _build_ui(self) -> None:
        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(10, 8, 10, 6)
        outer.addWidget(self.form)

        controls = QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.stop_button = QPushButton("Stop")
        self.open_button = QPushButton("Open in browser")
        self.apply_button = QPushButton("Apply changes")
        self.start_button.clicked.connect(self.start_action.trigger)
        self.stop_button.clicked.connect(self.stop_action.trigger)
        self.open_button.clicked.connect(self.open_action.trigger)
        self.apply_button.clicked.connect(self.apply_changes)
        for b in (self.start_button, self.stop_button, self.open_button, self.apply_button):
            controls.addWidget(b)
        controls.addSpacing(12)
        self.state_label = QLabel()
        self.state_label.setTextFormat(Qt.TextFormat.RichText)
        self.state_label.setOpenExternalLinks(False)
        self.state_label.linkActivated.connect(lambda _url: self.open_in_browser())
        controls.addWidget(self.state_label, 1)
        outer.addLayout(controls)
        self.start_progress = StartProgress()
        self.start_progress.show_log_requested.connect(self.show_log)
        outer.addWidget(self.start_progress)
        # Shown while the form differs from what the app serves.
        self.pending_label = QLabel()
        self.pending_label.setTextFormat(Qt.TextFormat.RichText)
        self.pending_label.linkActivated.connect(lambda _link: self.revert_changes())
        self.pending_label.setVisible(False)
        outer.addWidget(self.pending_label)

        self.splitter = StatusAndLog()
        self.phase_label, self.status_table, self.log_view = (
            self.splitter.phase_label, self.splitter.status_table, self.splitter.log_view)
        outer.addWidget(self.splitter, 1)

        self.setCentralWidget(central)
        self.resize(820, 720)
        self.py_drops = PyFileDrops(self, accepting=self.form.editable)  # a .py file dropped anywhere is the app
        self.py_drops.dropped.connect(self._on_py_dropped)

    def _wire(self) -> None:
        form, session = self.form, self.session
        form.edited.connect(self._on_edited)
        form.notice.connect(self.show_status_line)
        form.refused.connect(self._on_refused)
        form.app_row.checked.connect(self._on_app_checked)
        form.app_row.chosen.connect(self._remember_app)  # chosen on purpose: offered again even while it fails
        self.options.open_browser_changed.connect(self._on_open_browser_toggled)
        session.changed.connect(self._draw)
        session.status_changed.connect(self.status_table.show_status)
        session.metrics_changed.connect(self.status_table.charts.show_metrics)
        session.status_changed.connect(self.start_progress.follow_status)
        session.phase_changed.connect(self.start_progress.follow_phase)
        session.download_progress.connect(self.start_progress.follow_download)
        session.message_changed.connect(self.phase_label.setText)
        session.notice.connect(self.show_status_line)
        session.start_began.connect(lambda config: self.start_progress.begin(
            config.app is not None, config.cluster.address is not None, [s.label or s.model for s in config.models]))
        self.status_table.machines.went.connect(lambda address: self.tray.message(
            "A machine left", f"{address} left or died: its replicas start again where there is room."))
        session.launched.connect(self._on_launched)
        session.confirm_wanted.connect(lambda warnings, headline: dialogs.confirm_start(
            self, warnings, headline, session.confirm))
        session.restart_wanted.connect(lambda change: dialogs.confirm_restart(self, change, session.restart))
        session.settings_changed.connect(self.save_settings)
        session.quit_requested.connect(self.quit_requested)

    def _on_catalog_failed(self, exc: BaseException) -> None:
        self.form.set_choices(self.form.choices)
        show_error(
            "The model list could not be read; only the built-in model is offered.",
            "You can still type a hub id or a folder. The log has the details.",
            detail=getattr(exc, "__traceback_text__", repr(exc)),
            dialog=False,
        )

    # ---- what the buttons do ---------------------------------------------------------

    @property
    def controller(self) -> ServingController | None:
        return self.session.controller

    def start_serving(self, interactive: bool = True) -> None:
        """Validate, check, then start (asking first when interactive and it may not fit)."""
        self.session.start(interactive)

    def stop_serving(self) -> None:
        self.session.stop()

    def apply_changes(self) -> None:
        self.session.apply()

    def restart_serving(self) -> None:
        self.session.restart()

    def revert_changes(self) -> None:
        self.session.revert()

    def attach(self, record: SupervisorRecord) -> None:
        """Follow an app an earlier launch left serving."""
        self.session.attach(record)

    def open_in_browser(self) -> None:
        url = self.session.url()
        if url:
            self.browser.opener(url)

    def _on_launched(self, config: LaunchConfig) -> None:
        if config.app is not None:
            self._remember_app(config.app.target)
        self.status_table.clear_status()

    def _on_refused(self, purpose: str, message: str) -> None:
        if purpose == "save":  # start and apply are the session's to report
            show_error(f"The settings are not valid yet: {message}", "Fix them, then save again.")

    # ---- drawing the state -------------------------------------------------------------

    def _draw(self) -> None:
        session = self.session
        state, url, checking = session.serving_state(), session.url(), session.checking()
        controller = session.controller
        self.start_action.setEnabled(not checking and state in (ServingState.stopped, ServingState.error))
        self.stop_action.setEnabled(state in (ServingState.starting, ServingState.running))
        self.open_action.setEnabled(state is ServingState.running and bool(url))
        self.quit_keep_action.setEnabled(
            controller is not None and controller.is_active() and state is not ServingState.stopping
        )
        self.start_button.setEnabled(self.start_action.isEnabled())
        self.stop_button.setEnabled(self.stop_action.isEnabled())
        self.open_button.setEnabled(self.open_action.isEnabled())
        self.form.set_editable(session.editable())
        self.start_progress.follow_state(state.value, checking)

        changing = state_changing(state, session.changing(), session.state is SessionState.applying)
        self.state_label.setText(state_line(state, url, checking, changing))
        self.tray.set_state(state.value, url, changing)
        self.setWindowTitle(TITLE if state is ServingState.stopped else f"{TITLE} ({state.value})")
        self._update_pending()
        if state is ServingState.stopped:
            self.status_table.clear_status()
            if not checking:
                self.phase_label.setText("Not serving.")

    def _update_pending(self) -> None:
        """Offer Apply (or a restart) while the form differs from what the running app serves."""
        running = self.session.serving_state() is ServingState.running
        try:
            change = self.session.pending()
        except Exception:  # noqa: BLE001 - a half-built form (rows being swapped): no verdict yet
            change = self._pending
        self._pending = change
        self.apply_button.setVisible(running)
        self.apply_button.setEnabled(running and change.differs and not self.session.changing())
        text, tooltip = apply_button_words(change)
        self.apply_button.setText(text)
        self.apply_button.setToolTip(tooltip)
        show = running and change.differs and self.session.state is not SessionState.applying
        self.pending_label.setText(pending_line(change))
        self.pending_label.setVisible(show)

    def state_text(self) -> str:
        """The state line without markup (tests and the tray read it)."""
        return plain(self.state_label.text())

    def show_status_line(self, text: str) -> None:
        self.statusBar().showMessage(text.replace("\n", " "), 15000)

    def show_log(self) -> None:
        """Bring the log view forward, at its newest line ("Show log" under the progress bar)."""
        self.splitter.show_log()
        self.bring_forward()

    # ---- your app: recent files, drops -------------------------------------------------

    def _on_app_checked(self, result: Inspection) -> None:
        if result.ok:
            self._remember_app(result.target)  # an app that loads is worth offering again

    def _remember_app(self, target: str) -> None:
        if settings_mod.remember_app(self.settings, target):
            self.form.app_row.set_recent(self.settings.recent_apps)
            self._schedule_save()

    def _on_py_dropped(self, path: str) -> None:
        """A .py file dropped anywhere on the window: serve it (mode app), checked at once."""
        self.form.mode_app.setChecked(True)
        self.form.app_row.take_file(path)
        self.bring_forward()

    # ---- window life ----------------------------------------------------------------

    def bring_forward(self) -> None:
        self.showNormal()
        self.raise_()
        self.activateWindow()

    def toggle_visible(self) -> None:
        if self.isVisible() and not self.isMinimized():
            self.hide()
        else:
            self.bring_forward()

    @property
    def quitting(self) -> bool:
        return self.session.state is SessionState.quitting

    def request_quit(self, keep_serving: bool = False) -> None:
        """Quit; stop serving first unless keep_serving (the app is then found by the next launch)."""
        self.session.quit(keep_serving)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_settings()
        if self.quitting:
            event.accept()
            return
        if self.tray.available():
            event.ignore()
            self.hide()
            if not self.settings.tray_hint_shown:
                shown = self.tray.message(
                    TITLE, "Still running in the tray. Use Quit in the tray's menu to stop serving and exit."
                )
                if shown:
                    self.settings.tray_hint_shown = True
                    self.save_settings()
            return
        controller = self.session.controller
        if controller is None or not controller.is_active():
            event.accept()
            self.request_quit(False)
            return
        event.ignore()
        dialogs.ask_on_close(self, self.request_quit)

    # ---- settings ----------------------------------------------------------------------

    def _open_browser_default(self) -> bool:
        return self.settings.open_browser if self._open_browser_override is None else self._open_browser_override

    def _on_open_browser_toggled(self, checked: bool) -> None:
        self.session.open_browser = checked
        # A --no-browser session does not overwrite the saved preference.
        if self._open_browser_override is None:
            self.settings.open_browser = checked
        else:
            self._open_browser_override = checked
        self._schedule_save()

    def _on_edited(self) -> None:
        self._update_pending()
        self._schedule_save()

    def _schedule_save(self) -> None:
        self._save_timer.start()

    def save_settings(self) -> None:
        self._save_timer.stop()
        with contextlib.suppress(ConfigError):  # keep the last valid configuration; the user is mid-edit
            self.settings.config = self.form.current_config()
        self.settings.geometry = bytes(self.saveGeometry().toBase64()).decode()
        try:
            settings_mod.save(self.settings)
        except OSError as exc:
            show_error(
                f"Could not save the settings to {settings_mod.settings_path()} ({exc.strerror}).",
                "Check that the folder is writable; the settings apply to this session only.",
                dialog=False,
            )

    def load_config_file(self) -> None:
        config = dialogs.load_config(self)
        if config is not None:
            self.form.apply_config(config)
            self._on_edited()

    def save_config_file(self) -> None:
        config = self.form.validate("save")
        path = dialogs.save_config(self, config) if config is not None else None
        if path:
            self.show_status_line(f"Saved; run it without the window: gradio-serve up --config {path}")
