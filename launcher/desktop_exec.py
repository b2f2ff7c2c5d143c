"""The command that starts the launcher, and the Desktop Entry spec's Exec and string values.

Standard library only.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from launcher.xdg_files import APP_ID

# Characters that force quoting of an Exec argument (Desktop Entry spec, "The Exec key").
_EXEC_RESERVED = frozenset(" \t\n\"'\\><~|&;$*?#()`")


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


def needs_working_dir(command: list[str]) -> Path | None:
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
