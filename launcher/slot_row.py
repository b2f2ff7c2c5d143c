"""One model slot in the window: model picker, CPUs, GPUs, replicas (and remove, in fan-out).

An "Advanced" line under it (shown on demand) sets autoscaling: min and max
replicas and the ongoing requests per replica Serve aims for; while it is
on, the fixed replica count is unused and its box disabled. The same line
picks the weights' precision (ModelSlot.dtype); its tooltip says whether
bfloat16 suits this CPU, once the window knows.

The picker lists catalog entries (name, then task, size, memory estimate and
offline availability in grey) and takes free text: a hub id or a folder.
Numbers are bounded by what the machine has; values the window does not
show (label, generation...) are kept from the loaded slot.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolButton,
    QWidget,
)

from launcher.model_catalog import ModelChoice
from launcher.resource_boxes import ResourceBoxes
from serving.core.config import (
    DTYPES,
    MAX_CPUS_PER_REPLICA,
    MAX_GPUS_PER_REPLICA,
    Autoscaling,
    Mode,
    ModelSlot,
    bounds,
)

DETAILS_ROLE = Qt.ItemDataRole.UserRole + 1
CHOICE_ROLE = Qt.ItemDataRole.UserRole + 2

# Column widths shared with the header row so rows line up.
COL_BUTTON = 28

# The config's own limits (serving/core/config.py is their one source).
SCHEMA_MAX_CPUS = float(MAX_CPUS_PER_REPLICA)
SCHEMA_MAX_GPUS = float(MAX_GPUS_PER_REPLICA)
_SCALE_MIN = bounds(Autoscaling, "min_replicas")
_SCALE_MAX = bounds(Autoscaling, "max_replicas")
_SCALE_TARGET = bounds(Autoscaling, "target_ongoing_requests")

# (shown, ModelSlot.dtype) in the Precision box.
PRECISIONS = tuple(("Auto" if dtype == "auto" else dtype, dtype) for dtype in DTYPES)
PRECISION_HELP = (
    "Precision of the weights. Auto: bfloat16 on CPUs with native bfloat16 (AVX-512 BF16 or AMX:\n"
    "half the memory, about 1.5x sooner answers), float32 on other CPUs, bfloat16 (else float16) on a GPU.\n"
    "bfloat16 is slower on CPUs without native support; float16 is for GPUs."
)


class ChoiceDelegate(QStyledItemDelegate):
    """Draws "name    details" in the picker's list, details dimmed."""

    def paint(self, painter, option, index):
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        details = index.data(DETAILS_ROLE) or ""
        name = opt.text
        opt.text = ""
        style = opt.widget.style() if opt.widget else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
        rect = opt.rect.adjusted(6, 0, -6, 0)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        group = QPalette.ColorGroup.Normal
        painter.save()
        painter.setPen(
            opt.palette.color(group, QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text)
        )
        painter.drawText(rect, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, name)
        name_width = opt.fontMetrics.horizontalAdvance(name) + 24
        dim = opt.palette.color(
            group, QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.PlaceholderText
        )
        painter.setPen(dim)
        detail_rect = rect.adjusted(name_width, 0, 0, 0)
        painter.drawText(
            detail_rect,
            Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
            opt.fontMetrics.elidedText(details, Qt.TextElideMode.ElideLeft, detail_rect.width()),
        )
        painter.restore()

    def sizeHint(self, option, index):
        base = super().sizeHint(option, index)
        details = index.data(DETAILS_ROLE) or ""
        width = option.fontMetrics.horizontalAdvance(f"{index.data() or ''}{details}") + 60
        return QSize(max(base.width(), width), max(base.height(), option.fontMetrics.height() + 8))


class SlotRow(QWidget):
    changed = Signal()
    remove_requested = Signal(object)  # self

    def __init__(
        self,
        slot: ModelSlot | None = None,
        max_cpus: float = SCHEMA_MAX_CPUS,
        max_gpus: float = SCHEMA_MAX_GPUS,
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self._base = slot or ModelSlot()
        self._choices: dict[str, ModelChoice] = {}
        self._native_bf16: bool | None = None  # this CPU's, once the window's machine probe says

        self.number = QLabel("1.")
        self.number.setFixedWidth(18)
        self.model = QComboBox()
        self.model.setEditable(True)
        self.model.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.model.setItemDelegate(ChoiceDelegate(self.model))
        self.model.setMinimumContentsLength(22)
        self.model.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model.setToolTip("A model from the list, a Hugging Face hub id, or a local model folder")
        self.model.lineEdit().setPlaceholderText("model name, hub id or folder")
        self.browse = QToolButton()
        self.browse.setText("…")
        self.browse.setToolTip("Pick a local model folder")
        self.browse.setFixedWidth(COL_BUTTON)

        self.boxes = ResourceBoxes(
            self,
            cpus_tip="CPUs per replica (also the model's thread count)",
            replicas_tip="Copies of this model serving requests in parallel",
        )
        self.cpus, self.gpus, self.replicas = self.boxes.cpus, self.boxes.gpus, self.boxes.replicas
        self.remove = QToolButton()
        self.remove.setText("✕")
        self.remove.setToolTip("Remove this model")
        self.remove.setFixedWidth(COL_BUTTON)

        # Advanced: autoscaling (hidden until the window's "Advanced" is on).
        self.autoscale = QCheckBox("Autoscale")
        self.autoscale.setToolTip("Let Serve add and remove replicas with the load, between min and max")
        self.scale_min = QSpinBox()
        self.scale_min.setRange(int(_SCALE_MIN.minimum), int(_SCALE_MIN.maximum))
        self.scale_min.setToolTip("Fewest replicas kept running (0: none while idle)")
        self.scale_max = QSpinBox()
        self.scale_max.setRange(int(_SCALE_MAX.minimum), int(_SCALE_MAX.maximum))
        self.scale_max.setToolTip("Most replicas started under load (what must fit the cluster)")
        self.scale_target = QDoubleSpinBox()
        self.scale_target.setDecimals(2)
        self.scale_target.setRange(0.1, float(_SCALE_TARGET.maximum))  # above 0 (exclusive), in the box's steps
        self.scale_target.setSingleStep(0.5)
        self.scale_target.setToolTip("Ongoing requests per replica Serve aims for; more load adds replicas")
        self.precision = QComboBox()
        for text, value in PRECISIONS:
            self.precision.addItem(text, value)
        self.advanced = QWidget()
        line = QHBoxLayout(self.advanced)
        line.setContentsMargins(0, 0, 0, 0)
        line.setSpacing(6)
        line.addWidget(self.autoscale)
        for text, box in (("min", self.scale_min), ("max", self.scale_max), ("target requests", self.scale_target)):
            line.addSpacing(6)
            line.addWidget(QLabel(text))
            line.addWidget(box)
        line.addSpacing(18)
        self.precision_label = QLabel("Precision")
        line.addWidget(self.precision_label)
        line.addWidget(self.precision)
        line.addStretch(1)
        self.advanced.setVisible(False)

        self.details = QLabel()
        self.details.setObjectName("slotDetails")
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        palette = self.details.palette()
        palette.setColor(QPalette.ColorRole.WindowText, palette.color(QPalette.ColorRole.PlaceholderText))
        self.details.setPalette(palette)

        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(6)
        grid.setVerticalSpacing(1)
        grid.addWidget(self.number, 0, 0)
        grid.addWidget(self.model, 0, 1)
        grid.addWidget(self.browse, 0, 2)
        grid.addWidget(self.cpus, 0, 3)
        grid.addWidget(self.gpus, 0, 4)
        grid.addWidget(self.replicas, 0, 5)
        grid.addWidget(self.remove, 0, 6)
        grid.addWidget(self.details, 1, 1, 1, 2)
        grid.addWidget(self.advanced, 2, 1, 1, 6)
        grid.setColumnStretch(1, 1)

        self.set_bounds(max_cpus, max_gpus)
        self.set_slot(self._base)

        self.model.currentTextChanged.connect(self._on_model_text)
        self.cpus.valueChanged.connect(self._on_cpus)
        self.gpus.valueChanged.connect(self._on_gpus)
        self.precision.currentIndexChanged.connect(self._on_precision)
        self.replicas.valueChanged.connect(lambda _v: self.changed.emit())
        self.autoscale.toggled.connect(self._on_autoscale)
        for box in (self.scale_min, self.scale_max, self.scale_target):
            box.valueChanged.connect(self._on_autoscale)
        self.browse.clicked.connect(self._pick_folder)
        self.remove.clicked.connect(lambda: self.remove_requested.emit(self))

    # ---- values ---------------------------------------------------------

    def set_slot(self, slot: ModelSlot) -> None:
        self._base = slot
        self.model.setEditText(slot.model)
        self.cpus.setValue(slot.num_cpus)
        self.gpus.setValue(slot.num_gpus)
        self.replicas.setValue(slot.replicas)
        scaling = slot.autoscaling or Autoscaling(max_replicas=max(2, slot.replicas))
        self.autoscale.blockSignals(True)
        self.autoscale.setChecked(slot.autoscaling is not None)
        self.autoscale.blockSignals(False)
        self.scale_min.setValue(scaling.min_replicas)
        self.scale_max.setValue(scaling.max_replicas)
        self.scale_target.setValue(scaling.target_ongoing_requests)
        self.precision.setCurrentIndex(max(0, self.precision.findData(slot.dtype)))
        self._update_autoscale()
        self._update_precision_tip()
        self._update_details()

    def model_ref(self) -> str:
        return self.model.currentText().strip()

    def slot_dict(self) -> dict:
        """This slot as LaunchConfig data (validated by the caller, which names the field)."""
        data = self._base.model_dump(mode="json")
        data.update(model=self.model_ref(), num_cpus=self.cpus.value(), num_gpus=self.gpus.value())
        data["replicas"] = self.replicas.value()
        data["dtype"] = self.dtype()
        data["autoscaling"] = (
            {
                "min_replicas": self.scale_min.value(),
                "max_replicas": self.scale_max.value(),
                "target_ongoing_requests": self.scale_target.value(),
            }
            if self.autoscale.isChecked()
            else None
        )
        return data

    def dtype(self) -> str:
        return self.precision.currentData()

    def max_replicas(self) -> int:
        return self.scale_max.value() if self.autoscale.isChecked() else self.replicas.value()

    def autoscaling(self) -> bool:
        return self.autoscale.isChecked()

    def choice(self) -> ModelChoice | None:
        return self._choices.get(self.model_ref())

    def set_number(self, n: int) -> None:
        self.number.setText(f"{n}.")

    def set_removable(self, removable: bool) -> None:
        self.remove.setVisible(removable)

    def set_advanced_visible(self, visible: bool) -> None:
        self.advanced.setVisible(visible)

    def _on_autoscale(self, _checked: bool) -> None:
        self._update_autoscale()
        self.changed.emit()

    def _update_autoscale(self) -> None:
        """The fixed count is unused while autoscaling; the scaling boxes only matter while it is on."""
        on = self.autoscale.isChecked()
        editable = self.autoscale.isEnabled()
        self.replicas.setEnabled(editable and not on)
        for box in (self.scale_min, self.scale_max, self.scale_target):
            box.setEnabled(editable and on)
        self.replicas.setToolTip(
            f"Autoscaling: {self.scale_min.value()} to {self.scale_max.value()} replicas (see Advanced)"
            if on
            else "Copies of this model serving requests in parallel"
        )

    def set_native_bf16(self, native: bool | None) -> None:
        """What the machine probe found about this CPU (None: unknown), for the Precision tooltip."""
        self._native_bf16 = native
        self._update_precision_tip()

    def _on_precision(self, _index: int) -> None:
        self._update_precision_tip()
        self.changed.emit()

    def _update_precision_tip(self) -> None:
        """The general help, plus one line about this CPU when it matters to this slot's choice."""
        note = ""
        on_cpu = self.gpus.value() == 0
        if on_cpu and self._native_bf16 is True and self.dtype() == "auto":
            note = "\nThis CPU has native bfloat16: bfloat16 would answer about 1.5x sooner here."
        elif on_cpu and self._native_bf16 is False and self.dtype() == "bfloat16":
            note = "\nThis CPU has no native bfloat16: bfloat16 is slower than float32 here."
        self.precision.setToolTip(PRECISION_HELP + note)
        self.precision_label.setToolTip(PRECISION_HELP + note)

    # ---- catalog and bounds ----------------------------------------------

    def set_choices(self, choices: list[ModelChoice], mode: Mode) -> None:
        """Offer the entries that suit the mode; keep whatever is typed."""
        text = self.model.currentText()
        self._choices = {c.name: c for c in choices}
        self.model.blockSignals(True)
        self.model.clear()
        for c in choices:
            if not c.fits(mode):
                continue
            self.model.addItem(c.name)
            i = self.model.count() - 1
            self.model.setItemData(i, c.details(), DETAILS_ROLE)
            self.model.setItemData(
                i, (c.description + "\n" if c.description else "") + c.details(), Qt.ItemDataRole.ToolTipRole
            )
        self.model.setEditText(text)
        self.model.blockSignals(False)
        self._update_details()

    def set_bounds(self, max_cpus: float, max_gpus: float) -> None:
        """Cap CPUs and GPUs per replica at what the cluster has; replicas follow the CPUs."""
        self.boxes.set_bounds(max_cpus, max_gpus)

    def _on_cpus(self, _value: float) -> None:
        self.changed.emit()  # the replica bound already followed (ResourceBoxes)

    def _on_gpus(self, _value: float) -> None:
        self._update_precision_tip()  # what Auto means, and whether bfloat16 runs on this CPU, follow GPUs
        self.changed.emit()

    def _on_model_text(self, _text: str) -> None:
        self._update_details()
        self.changed.emit()

    def _update_details(self) -> None:
        c = self.choice()
        if c is not None:
            self.details.setText(c.details())
            self.details.setToolTip(c.description)
        elif self.model_ref():
            self.details.setText("hub id or folder: checked when you press Start")
            self.details.setToolTip("")
        else:
            self.details.setText("choose a model")
            self.details.setToolTip("")

    def _pick_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Model folder (with config.json)")
        if folder:
            self.model.setEditText(folder)

    def set_editable(self, editable: bool) -> None:
        for w in (self.model, self.browse, self.cpus, self.gpus, self.remove, self.autoscale, self.precision):
            w.setEnabled(editable)
        self._update_autoscale()
        if editable:
            self.gpus.setEnabled(self.gpus.maximum() > 0)
