"""Desktop integration on Linux (freedesktop/XDG): menu entry, icons, autostart.

    install_desktop_entry()    -> $XDG_DATA_HOME/applications/gradio-serve-launcher.desktop
                                  + the app icon in $XDG_DATA_HOME/icons/hicolor/<N>x<N>/apps
                                  and hicolor/scalable/apps
    uninstall_desktop_entry()  removes exactly what install added (a manifest records it)
    set_autostart(True/False)  writes/removes $XDG_CONFIG_HOME/autostart/gradio-serve-launcher.desktop
    autostart_enabled()        whether that entry exists and is not disabled

The entries run the installed `gradio-serve-launcher` by absolute path, so the menu
entry works however the command was installed (a virtual environment that is not on
PATH included). Also a small command line, independent of the window:

    python -m launcher.desktop_entry install | uninstall | status
    python -m launcher.desktop_entry autostart on [--start] | off

Standard library only: no Qt, no ray/gradio/torch/transformers. XDG variables are read
at call time, so a changed environment (tests) is honoured.
"""

from __future__ import annotations

import argparse
import configparser
import json
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

_KEY_START_SERVING = "X-GradioServeLauncher-StartServing"
_KEY_CREATED_DIRS = "X-GradioServeLauncher-CreatedDirs"
# Characters that force quoting of an Exec argument (Desktop Entry spec, "The Exec key").
_EXEC_RESERVED = frozenset(" \t\n\"'\\><~|&;$*?#()`")
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


def _require_xdg_platform() -> None:
    if sys.platform in ("win32", "cygwin", "darwin"):
        raise DesktopEntryError(
            "Desktop entries and XDG autostart are for Linux desktops. On macOS and Windows, "
            "build the packaged app (see packaging/README.md) and add it to the Dock/Start menu "
            "and login items from there."
        )


# --------------------------------------------------------------------------- the command


def launcher_command() -> list[str]:
    """Absolute argv that starts the launcher, best first:

    the frozen app itself (PyInstaller), an AppImage, the `gradio-serve-launcher` next to
    this interpreter (the environment that runs now), the one on PATH, and finally
    `<python> -m launcher.app`.
    """
    if getattr(sys, "frozen", False):
        return [os.path.abspath(sys.executable)]
    appimage = os.environ.get("APPIMAGE")
    if appimage and os.path.isfile(appimage):
        return [os.path.abspath(appimage)]
    # Not resolved: a venv's python is a symlink to the base interpreter, its bin is ours.
    beside = Path(os.path.abspath(sys.executable)).parent / APP_ID
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which(APP_ID)
    if found:
        return [os.path.abspath(found)]
    return [os.path.abspath(sys.executable), "-m", "launcher.app"]


def _needs_working_dir(command: list[str]) -> Path | None:
    """For the `python -m launcher.app` fallback from a source checkout: the folder to run in."""
    if command[1:3] != ["-m", "launcher.app"]:
        return None
    return Path(__file__).resolve().parent.parent


def quote_exec_arg(arg: str) -> str:
    """One argument of an Exec value, quoted and escaped as the Desktop Entry spec asks."""
    if arg and not any(ch in _EXEC_RESERVED for ch in arg):
        quoted = arg
    else:
        quoted = '"' + "".join("\\" + ch if ch in '"`$\\' else ch for ch in arg) + '"'
    return quoted.replace("%", "%%")


def escape_value(value: str) -> str:
    """A string value for a desktop file (the spec's \\s \\n \\t \\r \\\\ escapes)."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


def exec_value(argv: list[str]) -> str:
    return escape_value(" ".join(quote_exec_arg(a) for a in argv))


def _unescape_value(value: str) -> str:
    out, i = [], 0
    table = {"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"}
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value) and value[i + 1] in table:
            out.append(table[value[i + 1]])
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def parse_exec(value: str) -> list[str]:
    """Split an Exec value (as written in the file) back into arguments, per the spec."""
    text = _unescape_value(value)
    args: list[str] = []
    current: list[str] = []
    quoted = started = False
    i = 0
    while i < len(text):
        ch = text[i]
        if quoted:
            if ch == "\\" and i + 1 < len(text) and text[i + 1] in '"`$\\':
                current.append(text[i + 1])
                i += 1
            elif ch == '"':
                quoted = False
            else:
                current.append(ch)
        elif ch == '"':
            quoted = started = True
        elif ch in " \t":
            if current or started:
                args.append("".join(current))
            current, started = [], False
        else:
            current.append(ch)
        i += 1
    if quoted:
        raise ValueError(f"unterminated quote in Exec value {value!r}")
    if current or started:
        args.append("".join(current))
    return [a.replace("%%", "%") for a in args]


# --------------------------------------------------------------------------- file helpers


def _read_desktop_file(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False, delimiters=("=",), comment_prefixes=("#",))
    parser.optionxform = str  # keys are case-sensitive
    parser.read(path, encoding="utf-8")
    return parser


def _make_dirs(directory: Path, created: list[Path]) -> None:
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


def _write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _remove_empty_dirs(folders: list[Path]) -> None:
    """rmdir the given folders, deepest first, leaving any that are not empty."""
    for folder in sorted(set(folders), key=lambda p: len(p.parts), reverse=True):
        try:
            folder.rmdir()
        except OSError:
            pass


def _run_quietly(argv: list[str]) -> None:
    try:
        subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=_TOOL_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        pass


def _refresh_caches(base: Path) -> None:
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
        try:
            os.utime(hicolor)
        except OSError:
            pass


# --------------------------------------------------------------------------- menu entry


def render_desktop_entry(command: list[str] | None = None) -> str:
    """The shipped .desktop file with Exec/TryExec pointing at `command` (absolute)."""
    command = command or launcher_command()
    source = (resources_dir() / DESKTOP_FILE).read_text(encoding="utf-8")
    workdir = _needs_working_dir(command)
    lines = []
    group = ""
    for line in source.splitlines():
        key, sep, value = line.partition("=")
        if line.startswith("["):
            group = line
        elif sep and key == "Exec":
            args = parse_exec(value)
            if not args or args[0] != APP_ID:
                raise DesktopEntryError(f"{DESKTOP_FILE}: Exec must start with {APP_ID}, found {value!r}")
            line = "Exec=" + exec_value(command + args[1:])
            if group == "[Desktop Entry]" and workdir is not None:
                line += "\nPath=" + escape_value(str(workdir))
        elif sep and key == "TryExec":
            line = "TryExec=" + escape_value(command[0])
        lines.append(line)
    return "\n".join(lines) + "\n"


def _icon_files(resources: Path) -> list[tuple[Path, Path]]:
    """(source, path relative to the hicolor theme) for every icon to install."""
    icons = resources / "icons"
    pairs = [(icons / f"{APP_ID}.svg", Path("scalable") / "apps" / f"{APP_ID}.svg")]
    for size in ICON_SIZES:
        rel = Path(f"{size}x{size}") / "apps" / f"{APP_ID}.png"
        pairs.append((icons / "hicolor" / rel, rel))
    missing = [str(src) for src, _ in pairs if not src.is_file()]
    if missing:
        raise DesktopEntryError(
            f"Icon files are missing: {', '.join(missing)}. Reinstall gradio-serve-launcher, or in a "
            "source checkout run: python scripts/make_icons.py"
        )
    return pairs


def _read_manifest(base: Path) -> dict | None:
    path = base / APP_ID / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise DesktopEntryError(
            f"Cannot read {path} ({exc}). Delete it and the files it lists by hand, then install again."
        ) from exc
    if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION:
        raise DesktopEntryError(f"{path} is not a manifest this version understands; delete it and install again.")
    return data


def _inside(base: Path, rel: str) -> Path:
    """base/rel, refusing anything that would leave base (a damaged or edited manifest)."""
    path = (base / rel).absolute()
    if ".." in Path(rel).parts or Path(rel).is_absolute() or base.absolute() not in path.parents:
        raise DesktopEntryError(f"The install manifest lists {rel!r}, outside {base}; remove it by hand.")
    return path


def install_desktop_entry(command: list[str] | None = None) -> list[Path]:
    """Install the menu entry and icons for this user; returns the files written.

    Idempotent: installing again rewrites the same files (e.g. with a new Exec path)
    and keeps the record of folders the first install created.
    """
    _require_xdg_platform()
    base = data_home()
    resources = resources_dir()
    command = command or launcher_command()
    previous = _read_manifest(base) or {"files": [], "dirs": []}

    plan: list[tuple[Path, bytes]] = [
        (base / "applications" / DESKTOP_FILE, render_desktop_entry(command).encode("utf-8"))
    ]
    for source, rel in _icon_files(resources):
        plan.append((base / "icons" / "hicolor" / rel, source.read_bytes()))

    created: list[Path] = [_inside(base, d) for d in previous.get("dirs", [])]
    written: list[Path] = []
    try:
        for dest, data in plan:
            _make_dirs(dest.parent, created)
            _write_atomic(dest, data)
            written.append(dest)
        _make_dirs(base / APP_ID, created)
        files = sorted({str(p.relative_to(base)) for p in written} | set(previous.get("files", [])))
        dirs = sorted({str(d.relative_to(base)) for d in created if base in d.parents})
        # The data home itself and folders above it, if this install had to create them.
        above = sum(1 for d in created if d == base or d in base.parents)
        manifest = {
            "version": MANIFEST_VERSION,
            "app": APP_ID,
            "command": command,
            "files": files,
            "dirs": dirs,
            "created_levels_above": max(int(previous.get("created_levels_above", 0)), above),
        }
        _write_atomic(base / APP_ID / MANIFEST_NAME, (json.dumps(manifest, indent=2) + "\n").encode("utf-8"))
    except OSError as exc:
        raise DesktopEntryError(f"Could not write the desktop entry under {base}: {exc}. Check that it is writable.")
    _refresh_caches(base)
    return written


def uninstall_desktop_entry() -> list[Path]:
    """Remove what install_desktop_entry added (files, then the folders it created if empty).

    Returns the files removed; an empty list when nothing was installed.
    """
    _require_xdg_platform()
    base = data_home()
    manifest = _read_manifest(base)
    if manifest is None:
        return []
    removed: list[Path] = []
    for rel in manifest.get("files", []):
        path = _inside(base, rel)
        if path.is_file() or path.is_symlink():
            path.unlink()
            removed.append(path)
    own = base / APP_ID / MANIFEST_NAME
    own.unlink(missing_ok=True)
    folders = [_inside(base, d) for d in manifest.get("dirs", [])]
    levels = int(manifest.get("created_levels_above", 0))
    folders += [base, *base.parents][: min(levels, len(base.parents))]
    _remove_empty_dirs(folders)
    _refresh_caches(base)
    return removed


def desktop_entry_installed() -> bool:
    return (data_home() / APP_ID / MANIFEST_NAME).is_file() and desktop_entry_path().is_file()


# --------------------------------------------------------------------------- autostart


def render_autostart_entry(start_serving: bool = False, command: list[str] | None = None, created_dirs: int = 0) -> str:
    command = command or launcher_command()
    args = command + ["--minimized"] + (["--start"] if start_serving else [])
    lines = [
        "[Desktop Entry]",
        "Type=Application",
        "Name=Gradio Serve Launcher",
        "Comment=Start Gradio Serve Launcher in the tray at login" + (" and start serving" if start_serving else ""),
        "Exec=" + exec_value(args),
        "TryExec=" + escape_value(command[0]),
        f"Icon={APP_ID}",
        "Terminal=false",
        "X-GNOME-Autostart-enabled=true",
        f"{_KEY_START_SERVING}={'true' if start_serving else 'false'}",
        f"{_KEY_CREATED_DIRS}={created_dirs}",
    ]
    workdir = _needs_working_dir(command)
    if workdir is not None:
        lines.insert(5, "Path=" + escape_value(str(workdir)))
    return "\n".join(lines) + "\n"


def _autostart_entry() -> configparser.SectionProxy | None:
    path = autostart_path()
    if not path.is_file():
        return None
    try:
        parser = _read_desktop_file(path)
    except (OSError, configparser.Error):
        return None
    return parser["Desktop Entry"] if parser.has_section("Desktop Entry") else None


def set_autostart(enabled: bool, start_serving: bool = False) -> Path:
    """Write (enabled) or remove (disabled) the XDG autostart entry; returns its path.

    The entry runs `<launcher> --minimized`, plus `--start` when start_serving.
    Folders it had to create for the entry are removed again (if empty) on disable.
    """
    _require_xdg_platform()
    path = autostart_path()
    entry = _autostart_entry()
    try:
        previously_created = int(entry.get(_KEY_CREATED_DIRS, "0")) if entry is not None else 0
    except ValueError:
        previously_created = 0
    try:
        if enabled:
            created: list[Path] = []
            _make_dirs(path.parent, created)
            count = max(previously_created, len(created))
            _write_atomic(path, render_autostart_entry(start_serving, created_dirs=count).encode("utf-8"))
        else:
            path.unlink(missing_ok=True)
            folders = [path.parents[i] for i in range(min(previously_created, len(path.parents) - 1))]
            _remove_empty_dirs(folders)
    except OSError as exc:
        action = "write" if enabled else "remove"
        raise DesktopEntryError(f"Could not {action} the autostart entry {path}: {exc}. Check that it is writable.")
    return path


def autostart_enabled() -> bool:
    """True when the autostart entry exists and no desktop setting has disabled it."""
    entry = _autostart_entry()
    if entry is None:
        return False
    if entry.get("Hidden", "false").strip().lower() == "true":
        return False
    return entry.get("X-GNOME-Autostart-enabled", "true").strip().lower() != "false"


def autostart_starts_serving() -> bool:
    """True when the autostart entry also starts serving (--start)."""
    entry = _autostart_entry()
    if entry is None:
        return False
    try:
        return "--start" in parse_exec(entry.get("Exec", ""))[1:]
    except ValueError:
        return False


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m launcher.desktop_entry", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("install", help="add the menu entry and icons for this user")
    sub.add_parser("uninstall", help="remove what install added")
    sub.add_parser("status", help="show what is installed")
    auto = sub.add_parser("autostart", help="start the launcher at login (on) or not (off)")
    auto.add_argument("state", choices=("on", "off"))
    auto.add_argument("--start", action="store_true", help="also start serving when launched at login")
    args = parser.parse_args(argv)
    try:
        if args.action == "install":
            for path in install_desktop_entry():
                print(f"wrote {path}")
            print(f"Exec: {' '.join(launcher_command())}")
        elif args.action == "uninstall":
            removed = uninstall_desktop_entry()
            for path in removed:
                print(f"removed {path}")
            if not removed:
                print("nothing to remove: the desktop entry is not installed")
        elif args.action == "autostart":
            path = set_autostart(args.state == "on", start_serving=args.start)
            print(f"{'wrote' if args.state == 'on' else 'removed'} {path}")
        else:
            where = f"installed at {desktop_entry_path()}" if desktop_entry_installed() else "not installed"
            print(f"desktop entry: {where}")
            print(
                f"autostart: {'on' if autostart_enabled() else 'off'}"
                + (" (starts serving)" if autostart_enabled() and autostart_starts_serving() else "")
            )
            print(f"command: {' '.join(launcher_command())}")
    except DesktopEntryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
