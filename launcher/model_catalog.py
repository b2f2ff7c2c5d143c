"""The model picker's entries, from serving.core.catalog (light: no torch/transformers).

`load_choices()` scans the Hugging Face cache, so it runs in a worker.
Before the scan returns (or if serving.core.catalog is missing) the picker offers
the embedded model alone, and free text always works.
"""

from __future__ import annotations

from dataclasses import dataclass

from serving.core.config import EMBEDDED_MODEL, ConfigError, Mode
from serving.core.download_progress import human_bytes


@dataclass(frozen=True)
class ModelChoice:
    name: str
    kind: str = "instruct"  # seq2seq | causal | instruct
    tasks: tuple[str, ...] = ("summarize", "fanout")
    params_m: float | None = None
    memory_mb: int | None = None  # estimate for one replica
    available_offline: bool = True
    source: str = "embedded"  # embedded | hub | cache | folder
    description: str = ""
    size_on_disk: int | None = None  # bytes in the Hugging Face cache

    def fits(self, mode: Mode) -> bool:
        return (mode.value if isinstance(mode, Mode) else str(mode)) in self.tasks

    def details(self) -> str:
        """One line for the picker: task, size, memory estimate, offline availability."""
        parts = [self.kind]
        if self.params_m:
            parts.append(
                f"{self.params_m:g}M params" if self.params_m < 1000 else f"{self.params_m / 1000:.1f}B params"
            )
        if self.memory_mb:
            parts.append(f"~{_mb(self.memory_mb)} per replica")
        parts.append("offline" if self.available_offline else "needs a download")
        if self.size_on_disk:
            parts.append(f"{human_bytes(self.size_on_disk)} on disk")
        return " · ".join(parts)


def _mb(mb: float) -> str:
    return f"{mb / 1024:.1f} GB" if mb >= 1024 else f"{mb:.0f} MB"


def _from_entry(entry) -> ModelChoice:
    # Duck-typed: serving.core.catalog.CatalogEntry has these as fields or properties.
    tasks = getattr(entry, "tasks", None) or ("summarize", "fanout")
    return ModelChoice(
        name=str(entry.name),
        kind=str(getattr(entry, "kind", "") or "unknown"),
        tasks=tuple(tasks),
        params_m=getattr(entry, "params_m", None),
        memory_mb=getattr(entry, "memory_mb", None),
        available_offline=bool(getattr(entry, "available_offline", True)),
        source=str(getattr(entry, "source", "hub")),
        description=str(getattr(entry, "description", "") or ""),
        size_on_disk=getattr(entry, "size_on_disk", None),
    )


def fallback_choices() -> list[ModelChoice]:
    return [ModelChoice(name=EMBEDDED_MODEL, params_m=135, description="SmolLM2-135M-Instruct, shipped with the app")]


def load_choices() -> list[ModelChoice]:
    """Every catalog entry (worker thread: scans the Hugging Face cache)."""
    try:
        from serving.core import catalog
    except ImportError:
        return fallback_choices()
    return [_from_entry(e) for e in catalog.list_models()]


def resolve(ref: str, mode: Mode, field: str) -> ModelChoice:
    """What a typed reference is, checked against the mode; raises ConfigError (worker thread)."""
    try:
        from serving.core import catalog
    except ImportError:
        return ModelChoice(name=ref, source="hub")
    try:
        entry = catalog.resolve(ref)
    except ConfigError as exc:
        choice = _embedded_to_install(ref)
        if choice is None:
            raise ConfigError(f"{field}: {exc}") from None
        return choice
    if hasattr(catalog, "check_task"):
        catalog.check_task(entry, mode, field)
    return _from_entry(entry)


def _embedded_to_install(ref: str) -> ModelChoice | None:
    """The embedded model when its package is missing but Start will install it (serving.core.embedded_model)."""
    try:
        from serving.core import embedded_model
    except ImportError:
        return None
    if not embedded_model.is_embedded(ref) or embedded_model.install_blocker() is not None:
        return None
    return ModelChoice(
        name=EMBEDDED_MODEL,
        params_m=135,
        available_offline=False,
        description=f"SmolLM2-135M-Instruct, installed on the first start ({embedded_model.DOWNLOAD_MB} MB, once)",
    )
