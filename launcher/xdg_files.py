"""Where desktop integration puts its files (XDG base directories), the launcher's bundled
resources (the .desktop template, icons), and the careful file helpers it writes with.

Standard library only; XDG variables are read at call time (tests change them).
"""

from __future__ import annotations

import configparser
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

APP_ID = "gradio-serve-launcher"
DESKTOP_FILE = f"{APP_ID}.desktop"
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256)
TRAY_STATES = ("stopped", "starting", "running", "error")
MANIFEST_NAME = "desktop-entry-manifest.json"
MANIFEST_VERSION = 1

_TOOL_TIMEOUT_S = 30


class DesktopEntryError(RuntimeError):
    """A desktop-integration step failed; the message says what to do."""


# --------------------------------------------------------------------------- locations


def _xdg_dir(variable: str, default: str) -> Path:
    # The spec: an unset, empty or relative value is ignored and the default used.
    value = os.environ.get(variable, "")
    if value and os.path.isabs(value):
        return Path(value)
    return Path.home() / default


def data_home() -> Path:
    """$XDG_DATA_HOME, default ~/.local/share (read now, not at import)."""
    return _xdg_dir("XDG_DATA_HOME", ".local/share")


def config_home() -> Path:
    """$XDG_CONFIG_HOME, default ~/.config (read now, not at import)."""
    return _xdg_dir("XDG_CONFIG_HOME", ".config")


def desktop_entry_path() -> Path:
    return data_home() / "applications" / DESKTOP_FILE


def autostart_path() -> Path:
    return config_home() / "autostart" / DESKTOP_FILE


def manifest_path() -> Path:
    return data_home() / APP_ID / MANIFEST_NAME


def _resource_candidates() -> list[Path]:
    here = Path(__file__).resolve().parent
    candidates = []
    bundle = getattr(sys, "_MEIPASS", None)  # PyInstaller
    if bundle:
        candidates.append(Path(bundle) / "resources")
    candidates.append(here / "resources")  # installed as package data (launcher/resources)
    candidates.append(here.parent / "resources")  # source checkout / editable install
    return candidates


def resources_dir() -> Path:
    """The folder holding gradio-serve-launcher.desktop and icons/."""
    for candidate in _resource_candidates():
        if (candidate / DESKTOP_FILE).is_file() and (candidate / "icons" / f"{APP_ID}.svg").is_file():
            return candidate
    looked = ", ".join(str(c) for c in _resource_candidates())
    raise DesktopEntryError(
        f"The launcher's resources (icons, {DESKTOP_FILE}) are missing; looked in: {looked}. "
        "Reinstall gradio-serve-launcher (pip install --force-reinstall gradio-serve-launcher)."
    )


def app_icon_path(size: int | None = None) -> Path:
    """The app icon: the SVG, or the PNG of one of ICON_SIZES."""
    icons = resources_dir() / "icons"
    if size is None:
        return icons / f"{APP_ID}.svg"
    if size not in ICON_SIZES:
        raise ValueError(f"no {size}px app icon; sizes: {ICON_SIZES}")
    return icons / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png"


def tray_icon_path(state: str) -> Path:
    """The tray icon SVG for a state: stopped, starting, running or error."""
    if state not in TRAY_STATES:
        raise ValueError(f"unknown tray state {state!r}; states: {TRAY_STATES}")
    return resources_dir() / "icons" / f"tray-{state}.svg"


def require_xdg_platform() -> None:
    if sys.platform in ("win32", "cygwin", "darwin"):
        raise DesktopEntryError(
            "Desktop entries and XDG autostart are for Linux desktops. On macOS and Windows, "
            "build the packaged app (see packaging/README.md) and add it to the Dock/Start menu "
            "and login items from there."
        )


# --------------------------------------------------------------------------- file helpers


def read_desktop_file(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False, delimiters=("=",), comment_prefixes=("#",))
    parser.optionxform = str  # keys are case-sensitive
    parser.read(path, encoding="utf-8")
    return parser


def make_dirs(directory: Path, created: list[Path]) -> None:
    """mkdir -p, appending every folder it creates (outermost first) to `created`."""
    missing = []
    current = directory
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        created.append(folder)


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def remove_empty_dirs(folders: list[Path]) -> None:
    """rmdir the given folders, deepest first, leaving any that are not empty."""
    for folder in sorted(set(folders), key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            folder.rmdir()


def _run_quietly(argv: list[str]) -> None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=_TOOL_TIMEOUT_S,
            check=False,
        )


def refresh_caches(base: Path) -> None:
    """Tell desktops about a change, never creating a cache that was not there.

    update-desktop-database only maintains mimeinfo.cache (MIME associations; the entry
    declares none), so it runs only where that cache exists. A user icon-theme.cache
    that is not kept current hides icons other programs add later, so
    gtk-update-icon-cache likewise only refreshes an existing one. Missing tools and
    their failures are ignored. Touching hicolor/ makes GTK rescan the theme.
    """
    applications = base / "applications"
    tool = shutil.which("update-desktop-database")
    if tool and (applications / "mimeinfo.cache").is_file():
        _run_quietly([tool, "-q", str(applications)])
    hicolor = base / "icons" / "hicolor"
    tool = shutil.which("gtk-update-icon-cache")
    if tool and (hicolor / "icon-theme.cache").is_file():
        _run_quietly([tool, "-q", "-f", "-t", str(hicolor)])
    if hicolor.is_dir():
        with contextlib.suppress(OSError):
            os.utime(hicolor)
