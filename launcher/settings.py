"""The launcher's saved settings: one JSON file under platformdirs' config dir.

Only values that differ from the defaults are written, so a later release's
better defaults reach users who never changed them. A file that cannot be
read is moved aside (never deleted) and the defaults are used; `load()`
returns a message saying so, for the window to show.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

from serving.core import paths
from serving.core.config import LaunchConfig

FILENAME = "launcher.json"


@dataclass
class Settings:
    config: LaunchConfig = field(default_factory=LaunchConfig)
    open_browser: bool = True  # open the app in the browser once it answers
    tray_hint_shown: bool = False  # "still running in the tray" is said once
    geometry: str | None = None  # QWidget.saveGeometry(), base64
    recent_apps: list[str] = field(default_factory=list)  # your own apps' targets, most recent first


_PREFS = {"open_browser": bool, "tray_hint_shown": bool, "geometry": (str, type(None)), "recent_apps": list}
MAX_RECENT_APPS = 8


def remember_app(settings: Settings, target: str) -> bool:
    """Put `target` first in the recent apps (once, at most MAX_RECENT_APPS); True if the list changed."""
    target = target.strip()
    if not target:
        return False
    recent = [target] + [t for t in settings.recent_apps if t != target]
    recent = recent[:MAX_RECENT_APPS]
    if recent == settings.recent_apps:
        return False
    settings.recent_apps = recent
    return True


def settings_path() -> Path:
    return paths.config_dir() / FILENAME


def to_dict(settings: Settings) -> dict:
    """The non-default values, as stored on disk."""
    data: dict = {}
    config = json.loads(settings.config.to_json())
    if config:
        data["config"] = config
    defaults = Settings()
    for f in fields(Settings):
        if f.name != "config" and getattr(settings, f.name) != getattr(defaults, f.name):
            data[f.name] = getattr(settings, f.name)
    return data


def from_dict(data: object) -> Settings:
    """Raises ValueError or TypeError (ConfigError included) describing what is wrong."""
    if not isinstance(data, dict):
        raise TypeError("it does not hold a JSON object")
    settings = Settings()
    if "config" in data:
        if not isinstance(data["config"], dict):
            raise TypeError("'config' is not a JSON object")
        settings.config = LaunchConfig.from_dict(data["config"])
    for name, kind in _PREFS.items():
        if name in data:
            if not isinstance(data[name], kind):
                raise TypeError(f"'{name}' has the wrong type")
            setattr(settings, name, data[name])
    # A hand-edited list keeps its usable entries rather than costing the whole file.
    settings.recent_apps = [t for t in settings.recent_apps if isinstance(t, str) and t.strip()][:MAX_RECENT_APPS]
    # Unknown keys (a newer release's) are ignored, not fatal.
    return settings


def load(path: Path | None = None) -> tuple[Settings, str | None]:
    """(settings, message); the message is set when a corrupt file was moved aside."""
    path = path or settings_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Settings(), None
    except OSError as exc:
        return Settings(), f"Could not read the settings file {path} ({exc.strerror}); default settings are used."
    try:
        return from_dict(json.loads(text)), None
    except json.JSONDecodeError as exc:
        reason = f"not valid JSON, line {exc.lineno}: {exc.msg}"
    except (ValueError, TypeError) as exc:  # ConfigError is a ValueError
        reason = str(exc).replace("\n ", "")
    aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        path.replace(aside)
        where = f"It was moved to {aside}"
    except OSError:
        where = "It could not be moved aside and will be overwritten"
    return Settings(), (
        f"The settings file {path} could not be used ({reason}). {where}; the default settings are used."
    )


def save(settings: Settings, path: Path | None = None) -> Path:
    """Write the non-default values atomically. Raises OSError."""
    path = path or settings_path()
    paths.write_json_atomic(path, to_dict(settings))
    return path
