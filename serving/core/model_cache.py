"""The Hugging Face cache as the catalog shows it: is a model whole, how much disk it takes, remove it.

A model is kept where huggingface_hub keeps it (`$HF_HUB_CACHE/models--org--name/`: blobs,
snapshots linking to them, refs), so `hf cache ls`, transformers and we all see the same copy.
A download that was stopped leaves `blobs/<etag>.incomplete` there (serving/cluster/hub_download.py
continues it); it counts in the size on disk and goes with `gradio-serve models --remove NAME`.
Light: the standard library, and huggingface_hub's constants for where the cache is.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from serving.core.config import EMBEDDED_MODEL, ConfigError

INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


def hub_cache() -> Path:
    from huggingface_hub import constants

    return Path(os.environ.get("HF_HUB_CACHE") or constants.HF_HUB_CACHE)


def repo_folder(hub_id: str, cache: Path | None = None) -> Path:
    return (cache or hub_cache()) / ("models--" + hub_id.replace("/", "--"))


def snapshot_complete(folder: Path) -> bool:
    """A config and its weights: every shard an index names, else one weights file."""
    if not (folder / "config.json").is_file():
        return False
    for index in INDEX_FILES:
        if (folder / index).is_file():
            try:
                shards = set(json.loads((folder / index).read_text())["weight_map"].values())
            except (OSError, ValueError, KeyError, AttributeError):
                return False
            return all((folder / shard).is_file() for shard in shards)
    return any(folder.glob("*.safetensors")) or any(folder.glob("pytorch_model*.bin"))


def size_on_disk(hub_id: str, cache: Path | None = None) -> int:
    """Bytes the model's blobs take, a stopped download's part included (links take none)."""
    blobs = repo_folder(hub_id, cache) / "blobs"
    return sum(p.stat().st_size for p in blobs.iterdir() if p.is_file()) if blobs.is_dir() else 0


@dataclass
class Removed:
    name: str
    folder: Path
    freed_bytes: int


def remove(name: str, cache: Path | None = None) -> Removed:
    """Delete a cached Hub model (every revision, and a stopped download); ConfigError says why not."""
    name = name.strip()
    if name in (EMBEDDED_MODEL, "embedded", "default"):
        raise ConfigError(f"{name} is the embedded model, shipped with the app; it is not in the Hugging Face cache")
    if Path(name).expanduser().is_dir() or name.startswith((".", "/", "~")):
        raise ConfigError(f"{name} is a folder of yours, not a cached model: delete it yourself if you mean to")
    cache = cache or hub_cache()
    folder = repo_folder(name, cache)
    if not folder.is_dir():
        raise ConfigError(f"{name} is not in the Hugging Face cache ({cache}); `gradio-serve models` lists what is")
    if reason := in_use(name):
        raise ConfigError(reason)
    freed = size_on_disk(name, cache)
    shutil.rmtree(folder)
    shutil.rmtree(cache / ".locks" / folder.name, ignore_errors=True)  # huggingface_hub's lock files
    return Removed(name, folder, freed)


def in_use(name: str) -> str | None:
    """Why `name` cannot be removed now (the running app serves it, or a start downloads it); None if it can.
    The launcher asks before its confirmation; remove() asks again."""
    from serving.core.protocol import Phase
    from serving.core.records import live_record, read_status_record

    record = live_record()
    models = [slot.get("model") for slot in ((record.config or {}).get("models") or [])] if record else []
    if name not in models:
        return None
    status = read_status_record()
    if status and status.phase is Phase.downloading:
        return f"{name} is being downloaded now by the app starting at {record.url}: stop it first (`gradio-serve down`)"
    return (f"{name} is being served now (at {record.url}): stop the app first (`gradio-serve down`), "
            "or change the model in place (`gradio-serve apply --model ...`)")
