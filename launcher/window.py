"""The main window: what to serve and with what, Start/Stop/Open, status, log.

The window edits a LaunchConfig (fields it does not show, such as generation
settings from a --config file, are kept), validates it, checks models, port,
memory and CPUs in a worker, then hands it to a SupervisorProcess. It follows
the supervisor's state through signals only. "Connect to an existing cluster"
sets cluster.address (this machine's CPUs, GPUs and memory then no longer
bound or warn); "Advanced" shows each slot's autoscaling and precision line
(bfloat16 on a CPU without native support is warned about before Start, like
what does not fit). While the app
runs the form stays editable: "Apply changes" hands the difference to the
running supervisor (launcher/apply_changes.py), or restarts it when only a
restart can carry it (port, cluster).

Mode "Your app" serves the user's own Gradio file: the model rows give way to the app
row (launcher/app_picker.py), whose verdict on the file ("demo · gr.Blocks", or the
error) decides whether Start and Apply go ahead. Every start shows its steps in words
(launcher/start_progress.py).
"""

from __future__ import annotations

import dataclasses
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from PySide6.QtCore import QByteArray, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QPalette
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from launcher import errors, machine, model_catalog
from launcher import settings as settings_mod
from launcher.app_inspector import Inspection, load_config, short_name
from launcher.app_picker import AppRow, PyFileDrops
from launcher.apply_changes import ApplyOutcome, ApplyRequest, PendingChange, pending_change, same_config
from launcher.browser import BrowserOpener, open_url
from launcher.attached import AttachedSupervisor
from launcher.errors import show_error
from launcher.icons import STATE_COLOURS, app_icon
from launcher.log_view import LogView, open_logs_folder
from launcher.logs import launcher_logger
from launcher.model_catalog import ModelChoice
from launcher.settings import Settings
from launcher.slot_row import (
    COL_BUTTON,
    COL_CPUS,
    COL_GPUS,
    COL_REPLICAS,
    SCHEMA_MAX_CPUS,
    SCHEMA_MAX_GPUS,
    SlotRow,
)
from launcher.start_progress import StartProgress
from launcher.status_panel import StatusTable
from launcher.supervisor_process import ServingController, ServingState, SupervisorProcess
from launcher.tray import Tray
from launcher.worker import QueryOp
from serving.config import ConfigError, LaunchConfig, Mode, ModelSlot

TITLE = "Gradio Serve Launcher"
MAX_SLOTS = 8
# What "Connect to an existing cluster" takes (as `gradio-serve up --address`).
CLUSTER_ADDRESS = re.compile(r"auto|(ray://)?[^\s:/]+:\d{1,5}")
# Ray's processes, Serve's controller and proxy, and the Gradio ingress, before any model (rough).
SERVING_OVERHEAD_MB = 800

_MODE_HELP = {
    Mode.summarize: "One model summarizes the text you paste.",
    Mode.fanout: "One prompt goes to several models at once; their answers appear side by side.",
    Mode.app: "Your own Gradio app (a .py file), served unchanged, in as many replicas as you like.",
}


def _served(config: LaunchConfig) -> str:
    """What a config serves, in a few words: the models, or your app's file."""
    if config.app is not None:
        return short_name(config.app.target)
    return ", ".join(slot.model for slot in config.models)


@dataclass
class PrestartReport:
    """What the pre-start worker found (computed off the main thread)."""

    memory_available: int = 0
    choices: list[ModelChoice | None] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    port_in_use: bool = False
    free_port: int | None = None


def _port_in_use(host: str, port: int) -> bool:
    bind_host = "127.0.0.1" if host in ("localhost", "0.0.0.0", "::") else host
    with socket.socket(socket.AF_INET6 if ":" in bind_host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((bind_host, port))
        except OSError:
            return True
    return False


def _free_port_near(port: int) -> int | None:
    for candidate in range(port + 1, min(port + 50, 65536)):
        if not _port_in_use("127.0.0.1", candidate):
            return candidate
    return None


def prestart_check(config: LaunchConfig) -> PrestartReport:
    """Models exist and suit the mode, the port is free, and how much memory is free (worker thread)."""
    report = PrestartReport(memory_available=machine.memory()[1])
    for i, slot in enumerate(config.models):
        try:
            report.choices.append(model_catalog.resolve(slot.model, config.mode, f"Model {i + 1} ({slot.model})"))
        except ConfigError as exc:
            report.choices.append(None)
            report.problems.append(str(exc))
    if config.cluster.address is None and _port_in_use(config.http.host, config.http.port):
        report.port_in_use = True
        report.free_port = _free_port_near(config.http.port)
    return report


class MainWindow(QMainWindow):
    quit_requested = Signal(bool)  # keep_serving; app.py ends the event loop

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        open_browser: bool | None = None,
        controller_factory: Callable[[QWidget], SupervisorProcess] | None = None,
    ):
        super().__init__()
        self.settings = settings or Settings()
        self._open_browser_override = open_browser  # --no-browser, this session only
        self._controller_factory = controller_factory or (lambda parent: SupervisorProcess(parent))
        self.controller: ServingController | None = None
        self.machine = machine.MachineInfo(cpus=machine.cpu_count(), memory_total=0, memory_available=0)
        self._machine_probed = False
        self.choices: list[ModelChoice] = model_catalog.fallback_choices()
        self.catalog_loaded = False
        self._base = self.settings.config
        self.rows: list[SlotRow] = []
        self._stashed: list[ModelSlot] = []  # fan-out slots kept while in summarizer mode
        self._rows_mode = Mode.summarize  # the built-in mode the model rows are shaped for (kept in mode app)
        self._checking = False  # a pre-start check is running
        self._browser_pending = False
        self._quitting = False
        self._confirm_box: QMessageBox | None = None
        self._close_box: QMessageBox | None = None
        self._restart_box: QMessageBox | None = None
        self._loading = False
        self._applying: ApplyRequest | None = None  # an apply request waiting for its answer
        self._restart_pending = False  # Stop was pressed on the way to a restart with new settings
        self._pending = PendingChange()

        self.setWindowTitle(TITLE)
        self.setWindowIcon(app_icon())
        self.browser = BrowserOpener(self, opener=open_url)
        self._save_timer = QTimer(self, singleShot=True, interval=500)
        self._save_timer.timeout.connect(self.save_settings)

        self._build_actions()
        self._build_ui()
        self.tray = Tray(
            [
                self.start_action,
                self.stop_action,
                self.open_action,
                None,
                self.show_action,
                self.logs_action,
                None,
                self.quit_keep_action,
                self.quit_action,
            ],
            self,
        )
        self.tray.activated.connect(self.toggle_visible)
        self.tray.show()
        errors.set_presenter(self.show_status_line, self)

        self.apply_config(self.settings.config)
        if self.settings.geometry:
            self.restoreGeometry(QByteArray.fromBase64(self.settings.geometry.encode()))
        self._apply_state(ServingState.stopped)

        # Slow look-ups go to workers; the window is usable at once with what is known.
        QueryOp(self, machine.probe, self._on_machine, what="Detecting CPUs, memory and GPUs").run()
        QueryOp(
            self, model_catalog.load_choices, self._on_catalog, self._on_catalog_failed, what="Listing models"
        ).run()

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

        menu = self.menuBar().addMenu("&File")
        menu.addAction(QAction("Load configuration…", self, triggered=self._load_config_file))
        menu.addAction(QAction("Save configuration as…", self, triggered=self._save_config_file))
        menu.addSeparator()
        menu.addAction(self.logs_action)
        menu.addSeparator()
        menu.addAction(self.quit_keep_action)
        menu.addAction(self.quit_action)

    def _build_ui(self) -> None:
        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(10, 8, 10, 6)

        # Mode
        mode_row = QHBoxLayout()
        mode_row.addWidget(QLabel("<b>Mode</b>"))
        self.mode_summarize = QRadioButton("Summarizer")
        self.mode_fanout = QRadioButton("Parallel fan-out")
        self.mode_app = QRadioButton("Your app")
        self.mode_app.setToolTip("Serve your own Gradio app (a .py file); you can also drop the file on the window")
        self.mode_group = QButtonGroup(self)
        for button in (self.mode_summarize, self.mode_fanout, self.mode_app):
            self.mode_group.addButton(button)
            mode_row.addWidget(button)
        self.mode_summarize.setChecked(True)
        self.mode_help = QLabel()
        self.mode_help.setEnabled(False)  # dimmed explanatory text
        mode_row.addSpacing(12)
        mode_row.addWidget(self.mode_help, 1)
        outer.addLayout(mode_row)
        self.mode_group.buttonToggled.connect(lambda _button, checked: checked and self._on_mode_toggled(True))

        # Models
        self.models_box = QGroupBox("Models")
        models_layout = QVBoxLayout(self.models_box)
        models_layout.setSpacing(4)
        # The model rows (built-in modes) and the app row (mode app) share the box; one shows at a time.
        self.slots_panel = QWidget()
        slots_layout = QVBoxLayout(self.slots_panel)
        slots_layout.setContentsMargins(0, 0, 0, 0)
        slots_layout.setSpacing(4)
        header = QHBoxLayout()
        header.setSpacing(6)
        header.addSpacing(18 + 6)
        header.addWidget(QLabel("Model"), 1)
        header.addSpacing(COL_BUTTON + 6)
        for text, width in (("CPUs", COL_CPUS), ("GPUs", COL_GPUS), ("Replicas", COL_REPLICAS)):
            label = QLabel(text)
            label.setFixedWidth(width)
            header.addWidget(label)
        header.addSpacing(COL_BUTTON)
        slots_layout.addLayout(header)
        self.rows_layout = QVBoxLayout()
        self.rows_layout.setSpacing(6)
        slots_layout.addLayout(self.rows_layout)
        models_layout.addWidget(self.slots_panel)
        self.app_row = AppRow()
        self.app_row.setVisible(False)
        self.app_row.set_recent(self.settings.recent_apps)
        self.app_row.changed.connect(self._on_edited)
        self.app_row.checked.connect(self._on_app_checked)
        self.app_row.chosen.connect(self._on_app_chosen)
        models_layout.addWidget(self.app_row)
        below = QHBoxLayout()
        self.add_button = QPushButton("Add model")
        self.add_button.setToolTip(f"Fan-out sends each prompt to every model (up to {MAX_SLOTS})")
        self.add_button.clicked.connect(lambda: self.add_slot())
        below.addWidget(self.add_button)
        self.resources_label = QLabel()
        self.resources_label.setWordWrap(True)
        below.addWidget(self.resources_label, 1)
        self.advanced_button = QToolButton()
        self.advanced_button.setText("Advanced")
        self.advanced_button.setCheckable(True)
        self.advanced_button.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_button.setToolTip(
            "Per model: autoscaling (min and max replicas, target requests per replica) and precision"
        )
        self.advanced_button.toggled.connect(self._on_advanced_toggled)
        below.addWidget(self.advanced_button)
        models_layout.addLayout(below)
        outer.addWidget(self.models_box)

        # Serving options
        options = QHBoxLayout()
        options.addWidget(QLabel("Port"))
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setToolTip("HTTP port of the app (on 127.0.0.1 unless the configuration says otherwise)")
        self.port.valueChanged.connect(self._on_edited)
        options.addWidget(self.port)
        options.addSpacing(12)
        self.open_browser_box = QCheckBox("Open browser when ready")
        self.open_browser_box.toggled.connect(self._on_open_browser_toggled)
        options.addWidget(self.open_browser_box)
        self.autostart_box = QCheckBox("Start at login")
        self.autostart_serve_box = QCheckBox("and start serving")
        options.addWidget(self.autostart_box)
        options.addWidget(self.autostart_serve_box)
        options.addStretch(1)
        outer.addLayout(options)
        self._init_autostart()

        # Where: a local cluster started here, or an existing one
        cluster_row = QHBoxLayout()
        self.cluster_box = QCheckBox("Connect to an existing cluster")
        self.cluster_box.setToolTip("Deploy to a running Ray cluster instead of starting one on this machine")
        self.cluster_address = QLineEdit()
        self.cluster_address.setPlaceholderText("auto, host:port or ray://host:port")
        self.cluster_address.setToolTip(
            "auto: the cluster this machine belongs to; host:port: its GCS; ray://host:port: Ray Client"
        )
        self.cluster_address.setEnabled(False)
        self.cluster_box.toggled.connect(self._on_cluster_toggled)
        self.cluster_address.textEdited.connect(self._on_edited)
        cluster_row.addWidget(self.cluster_box)
        cluster_row.addWidget(self.cluster_address, 1)
        outer.addLayout(cluster_row)

        # Controls
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

        # Status and log, resizable against each other
        self.splitter = splitter = QSplitter(Qt.Orientation.Vertical)
        status_box = QGroupBox("Status")
        status_layout = QVBoxLayout(status_box)
        self.phase_label = QLabel("Not serving.")
        self.phase_label.setWordWrap(True)
        status_layout.addWidget(self.phase_label)
        self.status_table = StatusTable()
        status_layout.addWidget(self.status_table)
        log_box = QGroupBox("Log")
        log_layout = QVBoxLayout(log_box)
        self.log_view = LogView()
        log_layout.addWidget(self.log_view)
        splitter.addWidget(status_box)
        splitter.addWidget(log_box)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        splitter.setChildrenCollapsible(False)
        outer.addWidget(splitter, 1)

        self.setCentralWidget(central)
        self.resize(820, 720)
        self.py_drops = PyFileDrops(self, accepting=self._editable)  # a .py file dropped anywhere is the app
        self.py_drops.dropped.connect(self._on_py_dropped)

    def _init_autostart(self) -> None:
        try:
            from launcher import desktop_entry  # the other half of desktop integration; may be absent

            enabled = bool(desktop_entry.autostart_enabled())
            serve = bool(getattr(desktop_entry, "autostart_starts_serving", lambda: False)())
        except Exception as exc:  # noqa: BLE001 - a missing or broken module only disables the box
            launcher_logger().info("start at login is unavailable: %s", exc)
            for box in (self.autostart_box, self.autostart_serve_box):
                box.setEnabled(False)
                box.setToolTip("Desktop integration is not available in this installation")
            return
        self.autostart_box.setChecked(enabled)
        self.autostart_serve_box.setChecked(serve)
        self.autostart_serve_box.setEnabled(enabled)
        self.autostart_box.setToolTip("Start the launcher (in the tray) when you log in")
        self.autostart_serve_box.setToolTip("Also start serving with these settings at login")
        self.autostart_box.toggled.connect(self._on_autostart_toggled)
        self.autostart_serve_box.toggled.connect(self._on_autostart_toggled)

    def _on_autostart_toggled(self, _checked: bool) -> None:
        enabled, serve = self.autostart_box.isChecked(), self.autostart_serve_box.isChecked()
        self.autostart_serve_box.setEnabled(enabled)
        try:
            from launcher import desktop_entry

            desktop_entry.set_autostart(enabled, serve)
        except Exception as exc:  # noqa: BLE001 - reported, and the box shows the real state
            show_error(
                f"Could not change Start at login: {exc}",
                "Check that ~/.config/autostart is writable, then try again.",
                detail=repr(exc),
            )
            for box, value in ((self.autostart_box, not enabled), (self.autostart_serve_box, False)):
                box.blockSignals(True)
                box.setChecked(value)
                box.blockSignals(False)

    # ---- the configuration in the widgets ---------------------------------

    def mode(self) -> Mode:
        if self.mode_app.isChecked():
            return Mode.app
        return Mode.fanout if self.mode_fanout.isChecked() else Mode.summarize

    def apply_config(self, config: LaunchConfig) -> None:
        """Show `config` in the widgets (what they cannot show is kept for the next start)."""
        self._loading = True
        try:
            self._base = config
            button = {Mode.fanout: self.mode_fanout, Mode.app: self.mode_app}.get(config.mode, self.mode_summarize)
            button.setChecked(True)
            self.cluster_box.setChecked(config.cluster.address is not None)
            self.cluster_address.setText(config.cluster.address or "")
            self.app_row.set_bounds(*self._cluster_bounds())
            if config.mode is Mode.app:
                # The model rows keep what they held (or the default), for a switch back.
                self.app_row.set_spec(config.app)
                if not self.rows:
                    self._add_row(ModelSlot())
                    self._rows_mode = Mode.summarize
            else:
                self._stashed = []
                for row in list(self.rows):
                    self._drop_row(row)
                if any(slot.autoscaling or slot.dtype != "auto" for slot in config.models):
                    self.advanced_button.setChecked(True)
                for slot in config.models:
                    self._add_row(slot)
                self._rows_mode = config.mode
            self.port.setValue(config.http.port)
            self.open_browser_box.setChecked(self._open_browser_default())
        finally:
            self._loading = False
        self._refresh_rows()

    def _open_browser_default(self) -> bool:
        return self.settings.open_browser if self._open_browser_override is None else self._open_browser_override

    def config_dict(self) -> dict:
        data = self._base.model_dump(mode="json")
        data["mode"] = self.mode().value
        if self.mode() is Mode.app:
            data["models"], data["app"] = [], self.app_row.app_dict()
        else:
            data["models"], data["app"] = [row.slot_dict() for row in self.rows], None
        data["http"]["port"] = self.port.value()
        data["cluster"]["address"] = self._address()
        return data

    def _address(self) -> str | None:
        """The existing cluster's address, None for a local cluster."""
        return self.cluster_address.text().strip() if self.cluster_box.isChecked() else None

    def current_config(self) -> LaunchConfig:
        """The validated configuration; ConfigError says which field is wrong."""
        if self.mode() is Mode.app and not self.app_row.text():
            raise ConfigError("No app chosen: press Choose… and pick your app's .py file, or drop it on the window.")
        for i, row in enumerate(self.rows if self.mode() is not Mode.app else []):
            if not row.model_ref():
                raise ConfigError(f"Model {i + 1} is empty: pick a model from the list, or type a hub id or a folder.")
        address = self._address()
        if address is not None and not CLUSTER_ADDRESS.fullmatch(address):
            raise ConfigError(
                f"Cluster address {address!r} is not one of auto, host:port or ray://host:port "
                "(or untick “Connect to an existing cluster”)."
            )
        return LaunchConfig.from_dict(self.config_dict())

    def _cluster_bounds(self) -> tuple[float, float]:
        cluster = self._base.cluster
        if self._address() is not None:
            return SCHEMA_MAX_CPUS, SCHEMA_MAX_GPUS  # someone else's cluster: its size is unknown here
        cpus = cluster.num_cpus or self.machine.cpus
        gpus = cluster.num_gpus if cluster.num_gpus is not None else self.machine.gpu_count
        return float(cpus), float(gpus)

    def _add_row(self, slot: ModelSlot) -> SlotRow:
        cpus, gpus = self._cluster_bounds()
        row = SlotRow(slot, max_cpus=cpus, max_gpus=gpus)
        row.set_choices(self.choices, self.mode())
        row.changed.connect(self._on_edited)
        row.remove_requested.connect(self.remove_slot)
        row.set_advanced_visible(self.advanced_button.isChecked())
        row.set_native_bf16(self.machine.native_bf16)
        self.rows.append(row)
        self.rows_layout.addWidget(row)
        return row

    def _drop_row(self, row: SlotRow) -> None:
        self.rows.remove(row)
        self.rows_layout.removeWidget(row)
        row.setParent(None)
        row.deleteLater()

    def add_slot(self, slot: ModelSlot | None = None) -> SlotRow | None:
        if len(self.rows) >= MAX_SLOTS:
            return None
        row = self._add_row(slot or self._new_slot())
        self._refresh_rows()
        self._on_edited()
        return row

    def remove_slot(self, row: SlotRow) -> None:
        if self.mode() is Mode.fanout and len(self.rows) <= 2:
            self.show_status_line("Fan-out needs at least two models; switch to Summarizer for one.")
            return
        if row in self.rows:
            self._drop_row(row)
        self._refresh_rows()
        self._on_edited()

    def _new_slot(self) -> ModelSlot:
        """A new slot that still fits the machine's CPUs when it can (on 2 cores: 0.75 next to 1 + ingress)."""
        cpus, _gpus = self._cluster_bounds()
        used = self._base.ingress_cpus + sum(r.cpus.value() * r.max_replicas() for r in self.rows)
        fit = max(0.25, min(1.0, (cpus - used) // 0.25 * 0.25))
        return ModelSlot(model=self._next_model(), num_cpus=fit)

    def _next_model(self) -> str:
        """A model not used yet that suits fan-out and works offline, for a new slot."""
        used = {r.model_ref() for r in self.rows}
        for c in self.choices:
            if c.fits(Mode.fanout) and c.available_offline and c.name not in used:
                return c.name
        return self.choices[0].name if self.choices else ModelSlot().model

    def _on_mode_toggled(self, _checked: bool) -> None:
        mode = self.mode()
        self.mode_help.setText(_MODE_HELP[mode])
        if self._loading:
            return
        if mode is Mode.app:
            # The model rows stay as they are (hidden) for a switch back; the app row offers the last app.
            if not self.app_row.text() and self.settings.recent_apps:
                self.app_row.set_target(self.settings.recent_apps[0])
        elif mode is not self._rows_mode:
            if mode is Mode.summarize:
                # Keep the extra fan-out slots to bring back if the user switches back.
                self._stashed = [ModelSlot.model_validate(r.slot_dict()) for r in self.rows[1:] if r.model_ref()]
                for row in self.rows[1:]:
                    self._drop_row(row)
            else:
                for slot in self._stashed:
                    self._add_row(slot)
                self._stashed = []
                while len(self.rows) < 2:
                    self._add_row(self._new_slot())
            self._rows_mode = mode
            for row in self.rows:
                row.set_choices(self.choices, mode)
        self._refresh_rows()
        self._on_edited()

    def _refresh_rows(self) -> None:
        mode = self.mode()
        fanout, app = mode is Mode.fanout, mode is Mode.app
        self.mode_help.setText(_MODE_HELP[mode])
        self.models_box.setTitle("Your app" if app else "Models")
        self.slots_panel.setVisible(not app)
        self.advanced_button.setVisible(not app)
        self.app_row.setVisible(app)
        self.app_row.set_active(app)  # the app is checked (a child process) only when it is what is served
        for i, row in enumerate(self.rows):
            row.set_number(i + 1)
            row.set_removable(fanout and len(self.rows) > 2)
        self.add_button.setVisible(fanout)
        self.add_button.setEnabled(fanout and len(self.rows) < MAX_SLOTS and self._editable())
        self._update_resources()

    def _on_edited(self, *_args) -> None:
        if self._loading:
            return
        self._update_resources()
        self._update_pending()
        self._schedule_save()

    def _on_cluster_toggled(self, checked: bool) -> None:
        self.cluster_address.setEnabled(checked and self._editable())
        cpus, gpus = self._cluster_bounds()  # someone else's cluster: not this machine's numbers
        for row in self.rows:
            row.set_bounds(cpus, gpus)
        self.app_row.set_bounds(cpus, gpus)
        self._on_edited()

    def _on_advanced_toggled(self, checked: bool) -> None:
        self.advanced_button.setArrowType(Qt.ArrowType.DownArrow if checked else Qt.ArrowType.RightArrow)
        for row in self.rows:
            row.set_advanced_visible(checked)

    # ---- resources ---------------------------------------------------------

    def resource_warnings(
        self, config: LaunchConfig, memory_available: int | None = None, choices: list[ModelChoice | None] | None = None
    ) -> list[str]:
        """What will not fit this machine: CPUs, GPUs, memory (empty for a remote cluster)."""
        if config.cluster.address:
            return []
        warnings = []
        cpus, gpus = self._cluster_bounds()
        who = "Your app asks" if config.app else "The models ask"
        need_cpus = config.requested_cpus()
        if need_cpus > cpus + 1e-9:
            warnings.append(
                f"{who} for {need_cpus:g} CPUs"
                + ("" if config.app else f" (ingress {config.ingress_cpus:g} included)")
                + f" but this machine has {cpus:g}: replicas that do not fit will never start. "
                f"Lower CPUs or replicas."
            )
        need_gpus = config.requested_gpus()
        if need_gpus > gpus + 1e-9:
            warnings.append(f"{who} for {need_gpus:g} GPUs but {gpus:g} were found. Set GPUs to 0 or fewer.")
        available = memory_available if memory_available is not None else self.machine.memory_available
        need_mb, unknown = self.memory_estimate_mb(config, choices)
        if available and need_mb * 1024 * 1024 > available:
            warnings.append(
                f"The models need about {machine.format_bytes(need_mb * 1024 * 1024)} of memory but only "
                f"{machine.format_bytes(available)} is free: the machine may swap or a replica may be killed. "
                f"Use fewer replicas or smaller models, or close other programs."
                + (f" (Not counted: {', '.join(unknown)}.)" if unknown else "")
            )
        return warnings

    def precision_warnings(self, config: LaunchConfig) -> list[str]:
        """bfloat16 on a CPU known to lack native support (emulated: slower than float32); local cluster only."""
        if config.cluster.address or self.machine.native_bf16 is not False:
            return []
        return [
            f"Model {i + 1} ({slot.model}) uses bfloat16 on the CPU, but this CPU has no native bfloat16 "
            f"(AVX-512 BF16 or AMX): it will answer slower than with float32. Choose Auto or float32 "
            f"under Advanced."
            for i, slot in enumerate(config.models)
            if slot.dtype == "bfloat16" and slot.num_gpus == 0
        ]

    def memory_estimate_mb(
        self, config: LaunchConfig, choices: list[ModelChoice | None] | None = None
    ) -> tuple[int, list[str]]:
        """(estimated MB, models whose size is unknown)."""
        by_name = {c.name: c for c in self.choices}
        total, unknown = SERVING_OVERHEAD_MB, ["your app"] if config.app else []  # its size is its own
        for i, slot in enumerate(config.models):
            choice = choices[i] if choices and i < len(choices) and choices[i] else by_name.get(slot.model)
            if choice is None or not choice.memory_mb:
                unknown.append(slot.model)
                continue
            total += choice.memory_mb * slot.max_replicas
        return total, unknown

    def _update_resources(self) -> None:
        try:
            config = LaunchConfig.from_dict(self.config_dict())
        except (ConfigError, Exception):  # noqa: BLE001 - half-typed values: no summary yet
            self.resources_label.setText("")
            return
        if config.cluster.address is not None:
            where = f"Cluster at {config.cluster.address}" if config.cluster.address.strip() else "Existing cluster"
            self.resources_label.setText(f"{where}: resources are checked there.")
            self.resources_label.setToolTip("")
            return
        cpus, gpus = self._cluster_bounds()
        need_mb, unknown = self.memory_estimate_mb(config)
        parts = [f"{config.requested_cpus():g} of {cpus:g} CPUs"]
        if gpus or config.requested_gpus():
            parts.append(f"{config.requested_gpus():g} of {gpus:g} GPUs")
        mem = f"~{machine.format_bytes(need_mb * 1024 * 1024)}"
        if self.machine.memory_available:
            mem += f" of {machine.format_bytes(self.machine.memory_available)} free"
        parts.append(mem + (" plus your app's own" if config.app else " (some sizes unknown)" if unknown else ""))
        over = bool(self.resource_warnings(config))
        colour = STATE_COLOURS["error"] if over else self.palette().color(QPalette.ColorRole.PlaceholderText).name()
        self.resources_label.setText(f"<span style='color:{colour}'>Needs {' · '.join(parts)}</span>")
        self.resources_label.setToolTip(
            "\n".join(self.resource_warnings(config)) or "Estimates: Ray + Serve + Gradio, plus each model's replicas"
        )

    def _on_machine(self, info: machine.MachineInfo) -> None:
        self.machine = info
        self._machine_probed = True
        launcher_logger().info(
            "this machine: %d CPUs, %s free of %s, GPUs: %s, native bfloat16: %s",
            info.cpus,
            machine.format_bytes(info.memory_available),
            machine.format_bytes(info.memory_total),
            ", ".join(info.gpus) or "none",
            {True: "yes", False: "no", None: "unknown"}[info.native_bf16],
        )
        cpus, gpus = self._cluster_bounds()
        for row in self.rows:
            row.set_bounds(cpus, gpus)
            row.set_native_bf16(info.native_bf16)
        self.app_row.set_bounds(cpus, gpus)
        self._refresh_rows()

    def _on_catalog(self, choices: list[ModelChoice]) -> None:
        self.choices = choices or model_catalog.fallback_choices()
        self.catalog_loaded = True
        for row in self.rows:
            row.set_choices(self.choices, self.mode())
        self._update_resources()

    def _on_catalog_failed(self, exc: BaseException) -> None:
        self.catalog_loaded = True
        show_error(
            "The model list could not be read; only the built-in model is offered.",
            "You can still type a hub id or a folder. The log has the details.",
            detail=getattr(exc, "__traceback_text__", repr(exc)),
            dialog=False,
        )

    # ---- start / stop ---------------------------------------------------------

    def _checked_config(self, verb: str, fix: str) -> LaunchConfig | None:
        """The form's configuration, or None after telling the user which field to fix."""
        try:
            return self.current_config()
        except ConfigError as exc:
            show_error(f"The settings cannot be {verb} as they are:\n"
                       + str(exc).removeprefix("invalid configuration:\n"), fix)
            return None

    def start_serving(self, interactive: bool = True) -> None:
        """Validate, check, then start. Idempotent: does nothing while serving or checking."""
        if self._checking or (self.controller is not None and self.controller.is_active()):
            return
        config = self._checked_config("started", "Fix the value named above and press Start again.")
        if config is None:
            return
        self._base = config
        self.save_settings()
        self._checking = True
        self.start_progress.begin(config.mode is Mode.app, config.cluster.address is not None,
                                  [slot.label or slot.model for slot in config.models])
        self._apply_state(self._state())
        if config.mode is Mode.app:
            # Whether the file loads is known from the app row's check (run again if the file changed).
            self.show_status_line(f"Checking {_served(config)}…")
            self.app_row.when_checked(lambda result: self._after_app_check(config, result, interactive))
            return
        self._prestart(config, interactive)

    def _after_app_check(self, config: LaunchConfig, result: Inspection, interactive: bool) -> None:
        if not self._checking:
            return
        if result.refuses_start:
            self._checking = False
            self._apply_state(self._state())
            show_error(f"Your app cannot be started: {result.error}.",
                       (result.hint or "Fix it") + "; then press Start again.")
            return
        self._prestart(config, interactive)

    def _prestart(self, config: LaunchConfig, interactive: bool) -> None:
        self.show_status_line("Checking models, port and memory…" if config.models else "Checking port and memory…")
        QueryOp(
            self,
            lambda: prestart_check(config),
            lambda report: self._after_check(config, report, interactive),
            self._check_failed,
            what="Checking before start",
        ).run()

    def _check_failed(self, exc: BaseException) -> None:
        self._checking = False
        self._apply_state(self._state())
        show_error(
            f"Could not check the settings before starting: {exc}",
            "Try again; the log has the details.",
            detail=getattr(exc, "__traceback_text__", repr(exc)),
        )

    def _after_check(self, config: LaunchConfig, report: PrestartReport, interactive: bool) -> None:
        self.machine = dataclasses.replace(self.machine, memory_available=report.memory_available)
        if report.problems:
            self._checking = False
            self._apply_state(self._state())
            show_error(
                "\n".join(report.problems),
                "Pick another model, or switch mode (plain text-generation models only fit fan-out).",
            )
            return
        if report.port_in_use:
            self._checking = False
            self._apply_state(self._state())
            port = config.http.port
            suggestion = f" (for example {report.free_port})" if report.free_port else ""
            show_error(
                f"Port {port} is already in use on this machine.",
                f"Choose another port{suggestion}, or stop the program using {port}.",
            )
            return
        warnings = self.resource_warnings(config, report.memory_available, report.choices)
        fits = not warnings
        warnings += self.precision_warnings(config)
        if warnings and interactive:
            self._confirm_start(config, warnings, "This may be slow on this machine." if fits else None)
            return
        for w in warnings:
            launcher_logger().warning("%s", w)
        self._launch(config)

    def _confirm_start(self, config: LaunchConfig, warnings: list[str], headline: str | None = None) -> None:
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            TITLE,
            headline or "This may not fit this machine.",
            QMessageBox.StandardButton.Cancel,
            self,
        )
        box.setInformativeText("\n\n".join(warnings))
        start = box.addButton("Start anyway", QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)

        def done(_result: int) -> None:
            self._confirm_box = None
            if box.clickedButton() is start:
                self._launch(config)
            else:
                self._checking = False
                self._apply_state(self._state())
                self.show_status_line("Start cancelled.")

        box.finished.connect(done)
        self._confirm_box = box
        box.open()

    def _launch(self, config: LaunchConfig) -> None:
        self._checking = False
        if config.app is not None:
            self._remember_app(config.app.target)
        if not isinstance(self.controller, SupervisorProcess):
            self._set_controller(self._controller_factory(self))
        self.status_table.clear_status()
        self._browser_pending = self.open_browser_box.isChecked()
        self.controller.start(config)

    def _set_controller(self, controller: ServingController) -> None:
        if self.controller is not None:
            self.controller.deleteLater()
        self.controller = controller
        controller.state_changed.connect(lambda s: self._apply_state(ServingState(s)))
        controller.status_changed.connect(self.status_table.show_status)
        controller.message_changed.connect(self._on_phase_message)
        controller.phase_changed.connect(self.start_progress.follow_phase)
        controller.status_changed.connect(self.start_progress.follow_status)
        controller.url_changed.connect(lambda _url: self._apply_state(self._state()))
        controller.error_reported.connect(self._on_supervisor_error)
        controller.changing_changed.connect(lambda _changing: self._apply_state(self._state()))
        controller.running_config_changed.connect(self._on_running_config_changed)

    def _on_supervisor_error(self, message: str, hint: str) -> None:
        show_error(message, hint or "The log view has the supervisor's output.")

    def _on_phase_message(self, message: str) -> None:
        self.phase_label.setText(message)

    def stop_serving(self) -> None:
        self.browser.cancel()
        self._browser_pending = False
        if self.controller is not None:
            self.controller.stop()

    def open_in_browser(self) -> None:
        url = self.controller.url if self.controller else None
        if url:
            self.browser.opener(url)

    def attach(self, record: dict) -> None:
        """Follow an app an earlier launch left serving (and show what it serves)."""
        config = record.get("config")
        if isinstance(config, dict):
            try:
                self.apply_config(LaunchConfig.from_dict(config))
            except ConfigError:
                pass  # the widgets keep the saved settings; the status still shows
        controller = AttachedSupervisor(record, self)
        self._set_controller(controller)
        self._apply_state(controller.state)
        self.phase_label.setText(f"Serving (started earlier, supervisor pid {controller.pid}).")
        controller.start_following()

    # ---- changing the running app ------------------------------------------------

    def _update_pending(self) -> None:
        """Offer Apply (or a restart) while the form differs from what the running app serves."""
        controller = self.controller
        running = controller is not None and controller.state is ServingState.running
        change = PendingChange()
        if running and controller.running_config:
            try:
                change = pending_change(controller.running_config, self.config_dict())
            except Exception:  # noqa: BLE001 - a half-built form (rows being swapped): no verdict yet
                change = self._pending
        self._pending = change
        self.apply_button.setVisible(running)
        self.apply_button.setEnabled(running and change.differs and not self._changing())
        self.apply_button.setText("Restart to apply…" if change.restart else "Apply changes")
        self.apply_button.setToolTip(
            f"Changing {change.restart_words()} needs a restart: stop the app and start it with these settings"
            if change.restart
            else "Change the running app in place: the models are swapped while it keeps serving"
        )
        show = running and change.differs and self._applying is None
        if show:
            what = f"Changing {change.restart_words()} needs a restart." if change.restart else "Changes not applied yet."
            colour = STATE_COLOURS["starting"]
            self.pending_label.setText(f"<span style='color:{colour}'>{what}</span> <a href='revert'>Revert</a>")
        self.pending_label.setVisible(show)

    def apply_changes(self) -> None:
        """Carry the form's settings to the running app: in place when Serve can, else offer a restart."""
        controller = self.controller
        if controller is None or controller.state is not ServingState.running or self._changing():
            return
        config = self._checked_config(
            "applied", "Fix the value named above and press Apply again; the app keeps serving its current settings.")
        if config is None:
            return
        if config.mode is Mode.app:
            checked = self.app_row.current_result()
            if checked is None:  # not checked since it was edited: check, then come back
                self.show_status_line(f"Checking {_served(config)}…")
                self.app_row.when_checked(lambda _result: self.apply_changes())
                return
            if checked.refuses_start:
                show_error(f"Your app cannot be applied: {checked.error}.",
                           (checked.hint or "Fix it") + "; the app keeps serving its current version meanwhile.")
                return
        change = pending_change(controller.running_config, config.model_dump(mode="json"))
        if not change.differs:
            self.show_status_line("Nothing to apply: the app already serves these settings.")
            return
        if change.restart:
            self._confirm_restart(change)
            return
        for warning in self.resource_warnings(config) + self.precision_warnings(config):
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
        self._applying = request
        request.finished.connect(self._on_applied)
        launcher_logger().info("applying to the running app: %s", _served(config))
        self.show_status_line(f"Applying changes ({_served(config)})…")
        self._apply_state(self._state())

    def _on_applied(self, outcome: ApplyOutcome) -> None:
        request, self._applying = self._applying, None
        if request is not None:
            request.deleteLater()
        if outcome.ok:
            self._base = outcome.config
            if self.controller is not None:
                self.controller.set_running_config(outcome.config.model_dump(mode="json"))
            self.save_settings()
            text = f"Applied in {outcome.elapsed_s:.1f} s: {_served(outcome.config)}"
            launcher_logger().info("%s", text)
            self.show_status_line(text)
        elif not outcome.answered and self._state() is not ServingState.running:
            # Stopped (by the user) or failed (the controller reports that itself).
            launcher_logger().info("the changes were not applied: %s", outcome.message)
            self.show_status_line(f"The changes were not applied: {outcome.message}.")
        else:
            show_error(
                f"The changes were not applied: {outcome.message}.",
                outcome.hint or "The previous settings keep serving; change the settings and press Apply again.",
            )
        self._apply_state(self._state())

    def _confirm_restart(self, change: PendingChange) -> None:
        box = QMessageBox(
            QMessageBox.Icon.Question,
            TITLE,
            f"Changing {change.restart_words()} needs a restart.",
            QMessageBox.StandardButton.Cancel,
            self,
        )
        box.setInformativeText(
            "The app stops, then starts again with the new settings; it does not answer meanwhile."
        )
        restart = box.addButton("Restart with new settings", QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(restart)

        def done(_result: int) -> None:
            self._restart_box = None
            if box.clickedButton() is restart:
                self.restart_serving()

        box.finished.connect(done)
        self._restart_box = box
        box.open()

    def restart_serving(self) -> None:
        """Stop, then Start with the form's settings once stopped (see _apply_state)."""
        if self.controller is None or self._state() is not ServingState.running:
            return
        self._restart_pending = True
        self.show_status_line("Restarting with the new settings…")
        self.stop_serving()

    def revert_changes(self) -> None:
        """Put what the app serves back in the form."""
        config = self.controller.running_config if self.controller is not None else None
        if not config:
            return
        try:
            self.apply_config(LaunchConfig.from_dict(config))
        except ConfigError:
            return
        self._on_edited()

    def _on_running_config_changed(self, before: dict, after: dict) -> None:
        """The app's settings changed (our Apply, or `gradio-serve apply`): an unedited form follows them."""
        if self._applying is None and not same_config(self.config_dict(), after) and same_config(
            self.config_dict(), before
        ):
            try:
                self.apply_config(LaunchConfig.from_dict(after))
            except ConfigError:
                pass
            launcher_logger().info("the running app's settings changed elsewhere; the form shows them")
        self._update_pending()

    # ---- your app: recent files, drops ------------------------------------------------

    def _on_app_checked(self, result: Inspection) -> None:
        if result.ok:
            self._remember_app(result.target)  # an app that loads is worth offering again

    def _on_app_chosen(self, target: str) -> None:
        self._remember_app(target)  # chosen on purpose: offered again even while it fails to load

    def _remember_app(self, target: str) -> None:
        if settings_mod.remember_app(self.settings, target):
            self.app_row.set_recent(self.settings.recent_apps)
            self._schedule_save()

    def _on_py_dropped(self, path: str) -> None:
        """A .py file dropped anywhere on the window: serve it (mode app), checked at once."""
        self.mode_app.setChecked(True)
        self.app_row.take_file(path)
        self.bring_forward()

    def show_log(self) -> None:
        """Bring the log view forward, at its newest line ("Show log" under the progress bar)."""
        sizes = self.splitter.sizes()
        if len(sizes) == 2 and sizes[1] < 120:
            self.splitter.setSizes([max(90, sum(sizes) - 240), 240])
        bar = self.log_view.text.verticalScrollBar()
        bar.setValue(bar.maximum())
        self.log_view.text.setFocus()
        self.bring_forward()

    # ---- state -------------------------------------------------------------------

    def _state(self) -> ServingState:
        return self.controller.state if self.controller is not None else ServingState.stopped

    def _changing(self) -> bool:
        """A change is on its way to the running app (ours, or a rollback, or `gradio-serve apply`)."""
        return self._applying is not None or (self.controller is not None and self.controller.changing)

    def _editable(self) -> bool:
        """Settings can be edited when stopped, and while running (then applied with Apply changes)."""
        if self._checking or self._changing():
            return False
        return self._state() in (ServingState.stopped, ServingState.error, ServingState.running)

    def _apply_state(self, state: ServingState) -> None:
        url = self.controller.url if self.controller else None
        editable = self._editable()
        self.start_action.setEnabled(not self._checking and state in (ServingState.stopped, ServingState.error))
        self.stop_action.setEnabled(state in (ServingState.starting, ServingState.running))
        self.open_action.setEnabled(state is ServingState.running and bool(url))
        self.quit_keep_action.setEnabled(
            self.controller is not None and self.controller.is_active() and state is not ServingState.stopping
        )
        self.start_button.setEnabled(self.start_action.isEnabled())
        self.stop_button.setEnabled(self.stop_action.isEnabled())
        self.open_button.setEnabled(self.open_action.isEnabled())
        for w in (self.mode_summarize, self.mode_fanout, self.mode_app, self.port, self.cluster_box):
            w.setEnabled(editable)
        self.cluster_address.setEnabled(editable and self.cluster_box.isChecked())
        for row in self.rows:
            row.set_editable(editable)
        self.app_row.set_editable(editable)
        self.start_progress.follow_state(state.value, self._checking)
        self.add_button.setEnabled(editable and self.mode() is Mode.fanout and len(self.rows) < MAX_SLOTS)

        colour = STATE_COLOURS.get(state.value, "#9ca3af")
        changing = None
        if state is ServingState.running and self._changing():
            changing = "applying changes…" if self._applying is not None else "updating…"
            colour = STATE_COLOURS["starting"]
        words = {
            ServingState.stopped: "Checking…" if self._checking else "Stopped",
            ServingState.starting: "Starting…",
            ServingState.running: f"Running at <a href='{url}'>{url}</a>" if url else "Running",
            ServingState.stopping: "Stopping…",
            ServingState.error: "Checking…" if self._checking else "Failed (see the message and the log)",
        }
        text = words[state] + (f" · {changing}" if changing else "")
        self.state_label.setText(f"<span style='color:{colour}; font-size:14pt'>●</span> {text}")
        self.tray.set_state(state.value, url, changing)
        self.setWindowTitle(TITLE if state is ServingState.stopped else f"{TITLE} ({state.value})")
        self._update_pending()

        if state is ServingState.running and url and self._browser_pending:
            self._browser_pending = False
            self.browser.open_when_ready(url)
        if state is ServingState.stopped:
            self.status_table.clear_status()
            if not self._checking:
                self.phase_label.setText("Not serving.")
        if state in (ServingState.stopped, ServingState.error):
            self.browser.cancel()
            if self._quitting:
                self.quit_requested.emit(False)
            elif self._restart_pending:
                self._restart_pending = False
                if state is ServingState.stopped:
                    QTimer.singleShot(0, self, self.start_serving)  # the rest of the restart, with the form's settings

    def state_text(self) -> str:
        """The state line without markup (tests and the tray read it)."""
        label = self.state_label.text()
        return label.split("</span>", 1)[-1].strip() if "</span>" in label else label

    def show_status_line(self, text: str) -> None:
        self.statusBar().showMessage(text.replace("\n", " "), 15000)

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
        return self._quitting

    def request_quit(self, keep_serving: bool = False) -> None:
        """Quit; stop serving first unless keep_serving (the app is then found by the next launch)."""
        self.save_settings()
        controller = self.controller
        if controller is None or not controller.is_active():
            self._quitting = True
            self.quit_requested.emit(False)
            return
        if keep_serving:
            if isinstance(controller, SupervisorProcess) and not controller.detach():
                return  # stopping already: a plain quit will follow
            self._quitting = True
            self.quit_requested.emit(True)
            return
        self._quitting = True
        self.show_status_line("Stopping before quitting…")
        self.phase_label.setText("Stopping before quitting…")
        controller.stop()
        if controller.state in (ServingState.stopped, ServingState.error):
            self.quit_requested.emit(False)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_settings()
        if self._quitting:
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
        if self.controller is None or not self.controller.is_active():
            event.accept()
            self.request_quit(False)
            return
        event.ignore()
        self._ask_on_close()

    def _ask_on_close(self) -> None:
        box = QMessageBox(
            QMessageBox.Icon.Question,
            TITLE,
            "The app is still serving. Stop it and quit?",
            QMessageBox.StandardButton.Cancel,
            self,
        )
        box.setInformativeText("“Quit, keep serving” leaves it running; the next launch finds it and can stop it.")
        stop = box.addButton("Stop serving and quit", QMessageBox.ButtonRole.AcceptRole)
        keep = box.addButton("Quit, keep serving", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(stop)

        def done(_result: int) -> None:
            self._close_box = None
            clicked = box.clickedButton()
            if clicked is stop:
                self.request_quit(False)
            elif clicked is keep:
                self.request_quit(True)

        box.finished.connect(done)
        self._close_box = box
        box.open()

    # ---- settings ----------------------------------------------------------------------

    def _on_open_browser_toggled(self, checked: bool) -> None:
        if self._loading:
            return
        # A --no-browser session does not overwrite the saved preference.
        if self._open_browser_override is None:
            self.settings.open_browser = checked
        else:
            self._open_browser_override = checked
        self._schedule_save()

    def _schedule_save(self) -> None:
        if not self._loading:
            self._save_timer.start()

    def save_settings(self) -> None:
        self._save_timer.stop()
        try:
            self.settings.config = self.current_config()
        except ConfigError:
            pass  # keep the last valid configuration; the user is mid-edit
        self.settings.geometry = bytes(self.saveGeometry().toBase64()).decode()
        try:
            settings_mod.save(self.settings)
        except OSError as exc:
            show_error(
                f"Could not save the settings to {settings_mod.settings_path()} ({exc.strerror}).",
                "Check that the folder is writable; the settings apply to this session only.",
                dialog=False,
            )

    def _load_config_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load configuration", "", "JSON (*.json);;All files (*)")
        if not path:
            return
        try:
            self.apply_config(load_config(path))  # a relative app target: relative to the file
        except ConfigError as exc:
            show_error(
                f"{path} cannot be used: {exc}", "Fix the file (it is the same JSON as gradio-serve up --config)."
            )
            return
        self._on_edited()

    def _save_config_file(self) -> None:
        try:
            config = self.current_config()
        except ConfigError as exc:
            show_error(f"The settings are not valid yet: {exc}", "Fix them, then save again.")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save configuration", "gradio-serve.json", "JSON (*.json)")
        if not path:
            return
        try:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(config.to_json() + "\n")
        except OSError as exc:
            show_error(f"Could not write {path} ({exc.strerror}).", "Pick a folder you can write to.")
            return
        self.show_status_line(f"Saved; run it without the window: gradio-serve up --config {path}")
