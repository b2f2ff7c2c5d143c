"""The check before a start, run in a worker: the models exist and suit the mode, the port is
free (serving/core/preflight.py's rule, as the supervisor applies it), and how much memory is free."""

from __future__ import annotations

from dataclasses import dataclass, field

from launcher import machine, model_catalog
from launcher.model_catalog import ModelChoice
from serving.core import preflight
from serving.core.config import ConfigError, LaunchConfig


@dataclass
class PrestartReport:
    """What the pre-start worker found (computed off the main thread)."""

    memory_available: int = 0
    choices: list[ModelChoice | None] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    port_in_use: bool = False
    free_port: int | None = None

    def refusal(self, port: int) -> tuple[str, str] | None:
        """(message, hint) when the start cannot go on (models that will not do, the port taken); None: it can."""
        if self.problems:
            return ("\n".join(self.problems),
                    "Pick another model, or switch mode (plain text-generation models only fit fan-out).")
        if self.port_in_use:
            suggestion = f" (for example {self.free_port})" if self.free_port else ""
            return (f"Port {port} is already in use on this machine.",
                    f"Choose another port{suggestion}, or stop the program using {port}.")
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
    if config.cluster.address is None and preflight.port_in_use(config.http.host, config.http.port):
        report.port_in_use = True
        report.free_port = preflight.free_port_near(config.http.port)
    return report
