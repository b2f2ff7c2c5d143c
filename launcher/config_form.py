"""The form that edits a LaunchConfig: mode, model rows or your app's row, port, cluster.

It shows a config (`apply_config`), keeps the fields it does not show (generation settings
from a --config file, ...) from the last config it was given (`set_base`), and turns its
widgets back into a config: `validate(purpose)` returns the validated LaunchConfig and emits
`validated`, or emits `refused` with the field to fix. Its numbers are bounded by this
machine (or not at all for someone else's cluster), and what they need of it is said under
the rows (launcher/needs_label.py) by serving/core/preflight.py's rules.
"""

from __future__ import annotations

import dataclasses
import re

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from launcher import machine, model_catalog
from launcher.app_picker import AppRow
from launcher.join_row import JoinRow
from launcher.logs import launcher_logger
from launcher.model_catalog import ModelChoice
from launcher.model_rows import ModelRows
from launcher.needs_label import NeedsLabel
from launcher.slot_row import SCHEMA_MAX_CPUS, SCHEMA_MAX_GPUS, SlotRow
from serving.core import preflight
from serving.core.config import MAX_MODEL_SLOTS, ConfigError, HttpConfig, LaunchConfig, Mode, ModelSlot, bounds

_PORTS = (bounds(HttpConfig, "port").minimum, bounds(HttpConfig, "port").maximum)

# What "Connect to an existing cluster" takes (as `gradio-serve up --address`).
CLUSTER_ADDRESS = re.compile(r"auto|(ray://)?[^\s:/]+:\d{1,5}")

_MODE_HELP = {
    Mode.summarize: "One model summarizes the text you paste.",
    Mode.fanout: "One prompt goes to several models at once; their answers appear side by side.",
    Mode.app: "Your own Gradio app (a .py file), served unchanged, in as many replicas as you like.",
}


class ConfigForm(QWidget):
    edited = Signal()  # the user changed something (not emitted while a config is being shown)
    validated = Signal(str, object)  # (purpose, LaunchConfig): the form holds a valid config
    refused = Signal(str, str)  # (purpose, what is wrong): ConfigError's text, which names the field
    notice = Signal(str)  # a short line for the status bar

    def __init__(self, config: LaunchConfig, recent_apps: list[str], beside_port: QWidget | None = None):
        super().__init__()
        self.machine = machine.MachineInfo(cpus=machine.cpu_count(), memory_total=0, memory_available=0)
        self.machine_probed = False
        self.choices: list[ModelChoice] = model_catalog.fallback_choices()
        self.catalog_loaded = False
        self._base = config
        self._loading = False  # a config is being shown: no edits to report
        self._editable = True
        self._build(recent_apps, beside_port)
        self.apply_config(config)

    # ---- construction -----------------------------------------------------

    def _build(self, recent_apps: list[str], beside_port: QWidget | None) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)

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
        self.mode_group.buttonToggled.connect(lambda _button, checked: checked and self._on_mode_toggled())

        self.models_box = QGroupBox("Models")
        models_layout = QVBoxLayout(self.models_box)
        models_layout.setSpacing(4)
        # The model rows (built-in modes) and the app row (mode app) share the box; one shows at a time.
        self.slots_panel = ModelRows(ingress_cpus=lambda: self._base.ingress_cpus)
        self.slots_panel.changed.connect(self._on_edited)
        self.slots_panel.remove_requested.connect(self.remove_slot)
        self.slots_panel.catalog_changed.connect(self.set_choices)  # My models listed it anew
        self.slots_panel.set_choices(self.choices, Mode.summarize)
        models_layout.addWidget(self.slots_panel)
        self.app_row = AppRow()
        self.app_row.setVisible(False)
        self.app_row.set_recent(recent_apps)
        self.app_row.changed.connect(self._on_edited)
        models_layout.addWidget(self.app_row)
        below = QHBoxLayout()
        self.add_button = QPushButton("Add model")
        self.add_button.setToolTip(f"Fan-out sends each prompt to every model (up to {MAX_MODEL_SLOTS})")
        self.add_button.clicked.connect(lambda: self.add_slot())
        below.addWidget(self.add_button)
        self.resources_label = NeedsLabel()
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

        options = QHBoxLayout()
        options.addWidget(QLabel("Port"))
        self.port = QSpinBox()
        self.port.setRange(*_PORTS)
        self.port.setToolTip("HTTP port of the app (on 127.0.0.1 unless the configuration says otherwise)")
        self.port.valueChanged.connect(self._on_edited)
        options.addWidget(self.port)
        options.addSpacing(12)
        if beside_port is not None:
            options.addWidget(beside_port)
        options.addStretch(1)
        outer.addLayout(options)

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
        self.join_row = JoinRow()  # cluster.join_address: other machines join the cluster started here
        self.join_row.changed.connect(self._on_edited)
        outer.addWidget(self.join_row)

    # ---- config <-> widgets -------------------------------------------------

    def mode(self) -> Mode:
        if self.mode_app.isChecked():
            return Mode.app
        return Mode.fanout if self.mode_fanout.isChecked() else Mode.summarize

    def set_base(self, config: LaunchConfig) -> None:
        """What the fields the form does not show are taken from (the last config started or applied)."""
        self._base = config

    def apply_config(self, config: LaunchConfig) -> None:
        """Show `config` in the widgets (what they cannot show is kept for the next start)."""
        self._loading = True
        try:
            self._base = config
            button = {Mode.fanout: self.mode_fanout, Mode.app: self.mode_app}.get(config.mode, self.mode_summarize)
            button.setChecked(True)
            self.cluster_box.setChecked(config.cluster.address is not None)
            self.cluster_address.setText(config.cluster.address or "")
            self.join_row.set_join_address(config.cluster.join_address)
            self._set_bounds()
            if config.mode is Mode.app:
                # The model rows keep what they held (or the default), for a switch back.
                self.app_row.set_spec(config.app)
                if not self.rows:
                    self.slots_panel.show_slots([ModelSlot()], Mode.summarize)
            else:
                if any(slot.autoscaling or slot.dtype != "auto" for slot in config.models):
                    self.advanced_button.setChecked(True)
                self.slots_panel.show_slots(list(config.models), config.mode)
            self.port.setValue(config.http.port)
        finally:
            self._loading = False
        self._refresh_rows()

    def config_dict(self) -> dict:
        data = self._base.model_dump(mode="json")
        data["mode"] = self.mode().value
        if self.mode() is Mode.app:
            data["models"], data["app"] = [], self.app_row.app_dict()
        else:
            data["models"], data["app"] = [row.slot_dict() for row in self.rows], None
        data["http"]["port"] = self.port.value()
        data["cluster"]["address"] = self._address()
        data["cluster"]["join_address"] = None if self._address() is not None else self.join_row.join_address()
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

    def validate(self, purpose: str) -> LaunchConfig | None:
        """The config for `purpose` (start, apply, save): emitted as `validated`, or `refused` with the reason."""
        try:
            config = self.current_config()
        except ConfigError as exc:
            self.refused.emit(purpose, str(exc))
            return None
        self.validated.emit(purpose, config)
        return config

    # ---- model rows ---------------------------------------------------------

    def cluster_bounds(self) -> tuple[float, float]:
        """(CPUs, GPUs) the numbers may go up to: this machine's, or the schema's for someone else's cluster."""
        if self._address() is not None:
            return SCHEMA_MAX_CPUS, SCHEMA_MAX_GPUS  # someone else's cluster: its size is unknown here
        return preflight.local_capacity(self._base.cluster, self.machine.cpus, self.machine.gpu_count)

    @property
    def rows(self) -> list[SlotRow]:
        return self.slots_panel.rows

    def add_slot(self, slot: ModelSlot | None = None) -> SlotRow | None:
        if len(self.rows) >= MAX_MODEL_SLOTS:
            return None
        row = self.slots_panel.add(slot or self.slots_panel.new_slot(), self.mode())
        self._refresh_rows()
        self._on_edited()
        return row

    def remove_slot(self, row: SlotRow) -> None:
        if self.mode() is Mode.fanout and len(self.rows) <= 2:
            self.notice.emit("Fan-out needs at least two models; switch to Summarizer for one.")
            return
        if row in self.rows:
            self.slots_panel.drop(row)
        self._refresh_rows()
        self._on_edited()

    def _on_mode_toggled(self) -> None:
        mode = self.mode()
        self.mode_help.setText(_MODE_HELP[mode])
        if self._loading:
            return
        if mode is Mode.app:
            # The model rows stay as they are (hidden) for a switch back; the app row offers the last app.
            if not self.app_row.text() and self.app_row.recent():
                self.app_row.set_target(self.app_row.recent()[0])
        else:
            self.slots_panel.shape_for(mode)
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
        self.slots_panel.renumber(fanout)
        self.add_button.setVisible(fanout)
        self.add_button.setEnabled(fanout and len(self.rows) < MAX_MODEL_SLOTS and self._editable)
        self._update_resources()

    def _on_edited(self, *_args) -> None:
        if self._loading:
            return
        self._update_resources()
        self.edited.emit()

    def _on_cluster_toggled(self, checked: bool) -> None:
        self.cluster_address.setEnabled(checked and self._editable)
        self.join_row.set_editable(self._editable and not checked)  # machines join a cluster started here only
        self._set_bounds()  # someone else's cluster: not this machine's numbers
        self._on_edited()

    def _set_bounds(self) -> None:
        cpus, gpus = self.cluster_bounds()
        self.slots_panel.set_bounds(cpus, gpus)
        self.app_row.set_bounds(cpus, gpus)

    def _on_advanced_toggled(self, checked: bool) -> None:
        self.advanced_button.setArrowType(Qt.ArrowType.DownArrow if checked else Qt.ArrowType.RightArrow)
        self.slots_panel.set_advanced_visible(checked)

    def editable(self) -> bool:
        return self._editable

    def set_editable(self, editable: bool) -> None:
        """Settings can be edited when stopped, and while running (then carried over by Apply changes)."""
        self._editable = editable
        for w in (self.mode_summarize, self.mode_fanout, self.mode_app, self.port, self.cluster_box):
            w.setEnabled(editable)
        self.cluster_address.setEnabled(editable and self.cluster_box.isChecked())
        self.join_row.set_editable(editable and not self.cluster_box.isChecked())
        self.slots_panel.set_editable(editable)
        self.app_row.set_editable(editable)
        self.add_button.setEnabled(editable and self.mode() is Mode.fanout and len(self.rows) < MAX_MODEL_SLOTS)

    # ---- what it needs, and what it finds ------------------------------------

    def set_machine(self, info: machine.MachineInfo) -> None:
        launcher_logger().info(
            "this machine: %d CPUs, %s free of %s, GPUs: %s, native bfloat16: %s",
            info.cpus,
            machine.format_bytes(info.memory_available),
            machine.format_bytes(info.memory_total),
            ", ".join(info.gpus) or "none",
            {True: "yes", False: "no", None: "unknown"}[info.native_bf16],
        )
        self.machine = info
        self.machine_probed = True
        self._set_bounds()
        self.slots_panel.set_native_bf16(info.native_bf16)
        self._refresh_rows()

    def set_memory_available(self, available: int) -> None:
        """The free memory the pre-start check measured (newer than the probe's)."""
        self.machine = dataclasses.replace(self.machine, memory_available=available)

    def set_choices(self, choices: list[ModelChoice]) -> None:
        self.choices = choices or model_catalog.fallback_choices()
        self.catalog_loaded = True
        self.slots_panel.set_choices(self.choices, self.mode())
        self._update_resources()

    def memory_estimate_mb(
        self, config: LaunchConfig, choices: list[ModelChoice | None] | None = None
    ) -> tuple[int, list[str]]:
        """(estimated MB, models whose size is unknown); `choices` (the pre-start check's) win over the catalog's."""
        by_name = {c.name: c for c in self.choices}
        sizes = []
        for i, slot in enumerate(config.models):
            choice = choices[i] if choices and i < len(choices) and choices[i] else by_name.get(slot.model)
            sizes.append(choice.memory_mb if choice else None)
        return preflight.memory_estimate_mb(config, sizes)

    def resource_warnings(
        self, config: LaunchConfig, memory_available: int | None = None, choices: list[ModelChoice | None] | None = None
    ) -> list[str]:
        """What will not fit this machine: CPUs, GPUs, memory (empty for a remote cluster)."""
        available = memory_available if memory_available is not None else self.machine.memory_available
        return preflight.resource_warnings(
            config, *self.cluster_bounds(), available, self.memory_estimate_mb(config, choices)
        )

    def precision_warnings(self, config: LaunchConfig) -> list[str]:
        return preflight.precision_warnings(config, self.machine.native_bf16)

    def _update_resources(self) -> None:
        try:
            config = LaunchConfig.from_dict(self.config_dict())
        except (ConfigError, Exception):  # noqa: BLE001 - half-typed values: no summary yet
            self.resources_label.clear_needs()
            return
        self.resources_label.show_needs(config, self.cluster_bounds(), self.machine.memory_available,
                                        self.memory_estimate_mb(config), self.resource_warnings(config))
