"""The CPUs, GPUs and replicas boxes of one deployment (a model slot's row, or your app's), bounded by
the cluster, and the widths of their columns (the rows line up under one header)."""

from __future__ import annotations

import math

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QDoubleSpinBox, QSpinBox, QWidget

from serving.core.config import MAX_REPLICAS

COL_CPUS = 78
COL_GPUS = 78
COL_REPLICAS = 70
SCHEMA_MAX_REPLICAS = int(MAX_REPLICAS)


class ResourceBoxes(QObject):
    """CPUs, GPUs and replicas per deployment, bounded by the cluster: a model slot's and your app's.

    CPUs and GPUs per replica are capped at what the cluster has, and replicas at how many
    such replicas fit its CPUs, so what the boxes allow can be placed.
    """

    def __init__(self, parent: QWidget, cpus_tip: str, replicas_tip: str):
        super().__init__(parent)
        self._max_cpus = 1.0
        self.cpus = QDoubleSpinBox(parent)
        self.cpus.setDecimals(2)
        self.cpus.setSingleStep(0.25)
        self.cpus.setMinimum(0.25)
        self.cpus.setFixedWidth(COL_CPUS)
        self.cpus.setToolTip(cpus_tip)
        self.gpus = QDoubleSpinBox(parent)
        self.gpus.setDecimals(2)
        self.gpus.setSingleStep(0.25)
        self.gpus.setMinimum(0.0)
        self.gpus.setFixedWidth(COL_GPUS)
        self.replicas = QSpinBox(parent)
        self.replicas.setMinimum(1)
        self.replicas.setFixedWidth(COL_REPLICAS)
        self.replicas.setToolTip(replicas_tip)
        # Connected first, so the bound has moved before the owner hears of the change.
        self.cpus.valueChanged.connect(self.update_replica_bound)

    def set_bounds(self, max_cpus: float, max_gpus: float) -> None:
        self._max_cpus = max(0.25, float(max_cpus))
        self.cpus.setMaximum(self._max_cpus)
        self.gpus.setMaximum(max(0.0, float(max_gpus)))
        self.gpus.setEnabled(max_gpus > 0)
        self.gpus.setToolTip(
            "GPUs per replica; fractions share one GPU" if max_gpus > 0 else "No GPU found on this machine"
        )
        self.update_replica_bound()

    def update_replica_bound(self, *_args) -> None:
        fit = math.floor(self._max_cpus / max(self.cpus.value(), 0.01) + 1e-9)
        self.replicas.setMaximum(max(1, min(SCHEMA_MAX_REPLICAS, fit)))

    def set_editable(self, editable: bool) -> None:
        """Replicas are left to the owner (autoscaling disables them)."""
        self.cpus.setEnabled(editable)
        self.gpus.setEnabled(editable and self.gpus.maximum() > 0)
