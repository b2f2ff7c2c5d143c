"""The model rows of the built-in modes: a header, then one SlotRow per model (up to serving.core.config.MAX_MODEL_SLOTS).

It hands what every row needs from outside (bounds, the catalog, Advanced, native bfloat16)
to each row, old and new; shapes the rows for a mode (the summarizer has one model, fan-out
at least two; fan-out's extra rows are kept while the summarizer is shown, for a switch back);
and picks a new row's model and CPUs.
"""

from __future__ import annotations

from collections.abc import Callable

import shiboken6
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from launcher.model_catalog import ModelChoice
from launcher.my_models import MyModels
from launcher.resource_boxes import COL_CPUS, COL_GPUS, COL_REPLICAS
from launcher.slot_row import COL_BUTTON, SlotRow
from serving.core.config import Mode, ModelSlot


class ModelRows(QWidget):
    changed = Signal()  # a row was edited
    remove_requested = Signal(object)  # SlotRow: its remove button was pressed
    catalog_changed = Signal(list)  # list[ModelChoice]: My models listed the catalog anew (a model removed)

    def __init__(self, ingress_cpus: Callable[[], float]):
        super().__init__()
        self.rows: list[SlotRow] = []
        self.shaped_for = Mode.summarize  # the built-in mode the rows are shaped for (kept while in mode app)
        self._ingress_cpus = ingress_cpus  # counted when a new row's CPUs are chosen
        self._stashed: list[ModelSlot] = []  # fan-out slots kept while in summarizer mode
        self._bounds = (1.0, 0.0)
        self._choices: list[ModelChoice] = []
        self._advanced = False
        self._native_bf16: bool | None = None
        self.my_models: MyModels | None = None  # the dialog, while it is open
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        header = QHBoxLayout()
        header.setSpacing(6)
        header.addSpacing(18 + 6)
        header.addWidget(QLabel("Model"))
        self.my_models_button = QPushButton("My models…")
        self.my_models_button.setFlat(True)
        self.my_models_button.setToolTip("The models downloaded to this machine, their size on disk; remove one")
        self.my_models_button.clicked.connect(self.show_my_models)
        header.addWidget(self.my_models_button)
        header.addStretch(1)
        header.addSpacing(COL_BUTTON + 6)
        for text, width in (("CPUs", COL_CPUS), ("GPUs", COL_GPUS), ("Replicas", COL_REPLICAS)):
            label = QLabel(text)
            label.setFixedWidth(width)
            header.addWidget(label)
        header.addSpacing(COL_BUTTON)
        layout.addLayout(header)
        self.rows_layout = QVBoxLayout()
        self.rows_layout.setSpacing(6)
        layout.addLayout(self.rows_layout)

    def add(self, slot: ModelSlot, mode: Mode) -> SlotRow:
        row = SlotRow(slot, max_cpus=self._bounds[0], max_gpus=self._bounds[1])
        row.set_choices(self._choices, mode)
        row.changed.connect(self.changed)
        row.remove_requested.connect(self.remove_requested)
        row.set_advanced_visible(self._advanced)
        row.set_native_bf16(self._native_bf16)
        self.rows.append(row)
        self.rows_layout.addWidget(row)
        return row

    def show_my_models(self) -> MyModels:
        if self.my_models is None or not shiboken6.isValid(self.my_models):  # closed: deleted
            self.my_models = MyModels(self)
            self.my_models.catalog.connect(self.catalog_changed)
        self.my_models.show()
        self.my_models.raise_()
        return self.my_models

    def drop(self, row: SlotRow) -> None:
        self.rows.remove(row)
        self.rows_layout.removeWidget(row)
        row.setParent(None)
        row.deleteLater()

    def show_slots(self, slots: list[ModelSlot], mode: Mode) -> None:
        """Exactly these slots, shaped for `mode` (nothing stashed)."""
        self._stashed = []
        for row in list(self.rows):
            self.drop(row)
        for slot in slots:
            self.add(slot, mode)
        self.shaped_for = mode

    def shape_for(self, mode: Mode) -> None:
        """Summarizer: the first row (the rest stashed); fan-out: the stashed rows back, at least two."""
        if mode is Mode.app or mode is self.shaped_for:
            return
        if mode is Mode.summarize:
            self._stashed = [ModelSlot.model_validate(r.slot_dict()) for r in self.rows[1:] if r.model_ref()]
            for row in self.rows[1:]:
                self.drop(row)
        else:
            for slot in self._stashed:
                self.add(slot, mode)
            self._stashed = []
            while len(self.rows) < 2:
                self.add(self.new_slot(), mode)
        self.shaped_for = mode
        for row in self.rows:
            row.set_choices(self._choices, mode)

    def new_slot(self) -> ModelSlot:
        """A new slot that still fits the CPUs when it can (on 2 cores: 0.75 next to 1 + ingress)."""
        used = self._ingress_cpus() + sum(r.cpus.value() * r.max_replicas() for r in self.rows)
        room = max(0.25, min(1.0, (self._bounds[0] - used) // 0.25 * 0.25))
        return ModelSlot(model=self._next_model(), num_cpus=room)

    def _next_model(self) -> str:
        """A model not used yet that suits fan-out and works offline, for a new slot."""
        used = {r.model_ref() for r in self.rows}
        for c in self._choices:
            if c.fits(Mode.fanout) and c.available_offline and c.name not in used:
                return c.name
        return self._choices[0].name if self._choices else ModelSlot().model

    def renumber(self, fanout: bool) -> None:
        for i, row in enumerate(self.rows):
            row.set_number(i + 1)
            row.set_removable(fanout and len(self.rows) > 2)

    # ---- what every row gets -------------------------------------------------------

    def set_bounds(self, cpus: float, gpus: float) -> None:
        self._bounds = (cpus, gpus)
        for row in self.rows:
            row.set_bounds(cpus, gpus)

    def set_choices(self, choices: list[ModelChoice], mode: Mode) -> None:
        self._choices = choices
        for row in self.rows:
            row.set_choices(choices, mode)

    def set_advanced_visible(self, visible: bool) -> None:
        self._advanced = visible
        for row in self.rows:
            row.set_advanced_visible(visible)

    def set_native_bf16(self, native: bool | None) -> None:
        self._native_bf16 = native
        for row in self.rows:
            row.set_native_bf16(native)

    def set_editable(self, editable: bool) -> None:
        for row in self.rows:
            row.set_editable(editable)
