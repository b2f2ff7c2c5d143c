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
at call time, so a changed environment (tests) is honoured. Where files go and how they are
written: launcher/xdg_files.py; the command and the Exec key: launcher/desktop_exec.py.
"""

from __future__ import annotations

import argparse
import configparser
import json
import sys
from pathlib import Path

from launcher.desktop_exec import (  # noqa: F401 - re-exported: this module is desktop integration's face
    escape_value,
    exec_value,
    launcher_command,
    needs_working_dir,
    parse_exec,
    quote_exec_arg,
)
from launcher.xdg_files import (  # noqa: F401 - re-exported, as above
    APP_ID,
    DESKTOP_FILE,
    ICON_SIZES,
    MANIFEST_NAME,
    MANIFEST_VERSION,
    TRAY_STATES,
    DesktopEntryError,
    app_icon_path,
    autostart_path,
    config_home,
    data_home,
    desktop_entry_path,
    make_dirs,
    manifest_path,
    read_desktop_file,
    refresh_caches,
    remove_empty_dirs,
    require_xdg_platform,
    resources_dir,
    tray_icon_path,
    write_atomic,
)

_KEY_START_SERVING = "X-GradioServeLauncher-StartServing"
_KEY_CREATED_DIRS = "X-GradioServeLauncher-CreatedDirs"


# --------------------------------------------------------------------------- menu entry


def render_desktop_entry(command: list[str] | None = None) -> str:
    """The shipped .desktop file with Exec/TryExec pointing at `command` (absolute)."""
    command = command or launcher_command()
    source = (resources_dir() / DESKTOP_FILE).read_text(encoding="utf-8")
    workdir = needs_working_dir(command)
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
    require_xdg_platform()
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
            make_dirs(dest.parent, created)
            write_atomic(dest, data)
            written.append(dest)
        make_dirs(base / APP_ID, created)
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
        write_atomic(base / APP_ID / MANIFEST_NAME, (json.dumps(manifest, indent=2) + "\n").encode("utf-8"))
    except OSError as exc:
        raise DesktopEntryError(
            f"Could not write the desktop entry under {base}: {exc}. Check that it is writable."
        ) from None
    refresh_caches(base)
    return written


def uninstall_desktop_entry() -> list[Path]:
    """Remove what install_desktop_entry added (files, then the folders it created if empty).

    Returns the files removed; an empty list when nothing was installed.
    """
    require_xdg_platform()
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
    remove_empty_dirs(folders)
    refresh_caches(base)
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
    workdir = needs_working_dir(command)
    if workdir is not None:
        lines.insert(5, "Path=" + escape_value(str(workdir)))
    return "\n".join(lines) + "\n"


def _autostart_entry() -> configparser.SectionProxy | None:
    path = autostart_path()
    if not path.is_file():
        return None
    try:
        parser = read_desktop_file(path)
    except (OSError, configparser.Error):
        return None
    return parser["Desktop Entry"] if parser.has_section("Desktop Entry") else None


def set_autostart(enabled: bool, start_serving: bool = False) -> Path:
    """Write (enabled) or remove (disabled) the XDG autostart entry; returns its path.

    The entry runs `<launcher> --minimized`, plus `--start` when start_serving.
    Folders it had to create for the entry are removed again (if empty) on disable.
    """
    require_xdg_platform()
    path = autostart_path()
    entry = _autostart_entry()
    try:
        previously_created = int(entry.get(_KEY_CREATED_DIRS, "0")) if entry is not None else 0
    except ValueError:
        previously_created = 0
    try:
        if enabled:
            created: list[Path] = []
            make_dirs(path.parent, created)
            count = max(previously_created, len(created))
            write_atomic(path, render_autostart_entry(start_serving, created_dirs=count).encode("utf-8"))
        else:
            path.unlink(missing_ok=True)
            folders = [path.parents[i] for i in range(min(previously_created, len(path.parents) - 1))]
            remove_empty_dirs(folders)
    except OSError as exc:
        action = "write" if enabled else "remove"
        raise DesktopEntryError(
            f"Could not {action} the autostart entry {path}: {exc}. Check that it is writable."
        ) from None
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
