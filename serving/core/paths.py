"""Where the app keeps its files (platformdirs, so XDG_* is respected on Linux).

Light on purpose: the launcher imports it too.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import platformdirs

APP = "gradio-serve-launcher"


def _dirs() -> platformdirs.PlatformDirs:
    # Built on each call so a changed XDG_* variable (tests, sandboxes) takes effect.
    return platformdirs.PlatformDirs(APP, appauthor=False)


def cache_dir() -> Path:
    """Converted model weights; safe to delete."""
    return Path(os.environ.get("GRADIO_SERVE_CACHE_DIR") or _dirs().user_cache_dir)


def state_dir() -> Path:
    """The running supervisor's record (supervisor.json) and its last status (status.json)."""
    return Path(os.environ.get("GRADIO_SERVE_STATE_DIR") or _dirs().user_state_dir)


def log_dir() -> Path:
    return Path(os.environ.get("GRADIO_SERVE_LOG_DIR") or _dirs().user_log_dir)


def config_dir() -> Path:
    return Path(_dirs().user_config_dir)


def supervisor_record() -> Path:
    return state_dir() / "supervisor.json"


def status_record() -> Path:
    return state_dir() / "status.json"


def metrics_record() -> Path:
    return state_dir() / "metrics.json"  # the last metrics event (serving/cluster/metrics_reader.py)


def supervisor_log() -> Path:
    return log_dir() / "supervisor.log"


def write_json_atomic(path: Path, data: dict) -> None:
    """Write then rename, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, default=str)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None
