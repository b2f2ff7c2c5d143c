"""What a configuration needs of this machine, in one line under the model rows.

"Needs 2 of 4 CPUs · ~1.7 GB of 8 GB free", in the error colour with the reasons in its
tooltip when it will not fit (serving/core/preflight.py's rules); for someone else's cluster,
only that its resources are checked there.
"""

from __future__ import annotations

from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QLabel

from launcher import machine
from launcher.icons import STATE_COLOURS
from serving.core.config import LaunchConfig


class NeedsLabel(QLabel):
    def __init__(self):
        super().__init__()
        self.setWordWrap(True)

    def clear_needs(self) -> None:
        """Half-typed values: no summary yet."""
        self.setText("")

    def show_needs(
        self,
        config: LaunchConfig,
        capacity: tuple[float, float],
        memory_available: int,
        memory: tuple[int, list[str]],
        warnings: list[str],
    ) -> None:
        """`capacity` (CPUs, GPUs), `memory` (estimated MB, what is not counted), `warnings`: what does not fit."""
        if config.cluster.address is not None:
            where = f"Cluster at {config.cluster.address}" if config.cluster.address.strip() else "Existing cluster"
            self.setText(f"{where}: resources are checked there.")
            self.setToolTip("")
            return
        cpus, gpus = capacity
        need_mb, unknown = memory
        parts = [f"{config.requested_cpus():g} of {cpus:g} CPUs"]
        if gpus or config.requested_gpus():
            parts.append(f"{config.requested_gpus():g} of {gpus:g} GPUs")
        mem = f"~{machine.format_bytes(need_mb * 1024 * 1024)}"
        if memory_available:
            mem += f" of {machine.format_bytes(memory_available)} free"
        parts.append(mem + (" plus your app's own" if config.app else " (some sizes unknown)" if unknown else ""))
        colour = STATE_COLOURS["error"] if warnings else self.palette().color(QPalette.ColorRole.PlaceholderText).name()
        self.setText(f"<span style='color:{colour}'>Needs {' · '.join(parts)}</span>")
        self.setToolTip("\n".join(warnings) or "Estimates: Ray + Serve + Gradio, plus each model's replicas")
