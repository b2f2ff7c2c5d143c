"""What a TARGET names, found and checked without importing it: `path/to/demo.py`,
`path/to/demo.py:NAME` or `package.module:NAME` (NAME: a gr.Blocks or a function returning one).

The light half of serving/replica/app_target.py, which imports the app: the launcher, the CLI and the
supervisor parse targets, make them absolute or portable and check the file's syntax with it,
without Gradio and without running the user's code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


class AppLoadError(Exception):
    """The app cannot be loaded; the message names the file (and line) and the fix."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True)
class Target:
    text: str
    file: Path | None  # a .py file, absolute
    module: str | None  # or a dotted module name
    name: str | None  # the attribute, or None: find the one Blocks

    @property
    def where(self) -> str:
        return str(self.file) if self.file else self.module or self.text


def parse_target(text: str, base: Path | None = None) -> Target:
    """Split TARGET into a file or module and an optional NAME; relative files against `base`."""
    text = text.strip()
    if not text:
        raise AppLoadError("no app given", "give the app's file, e.g. --app demo.py or --app demo.py:demo")
    spec, name = text, None
    head, sep, tail = text.rpartition(":")
    if sep and tail.isidentifier() and head:
        spec, name = head, tail
    looks_like_file = spec.endswith(".py") or "/" in spec or os.sep in spec
    if looks_like_file:
        path = Path(spec).expanduser()
        if not path.is_absolute():
            path = (base or Path.cwd()) / path
        return Target(text, path.resolve(), None, name)
    if not all(part.isidentifier() for part in spec.split(".")):
        raise AppLoadError(f"{text!r} is neither a .py file nor a module name",
                           "give path/to/demo.py, path/to/demo.py:NAME or package.module:NAME")
    return Target(text, None, spec, name)


def absolute_target(text: str, base: Path | None = None) -> tuple[str, str | None]:
    """(target with an absolute file path, the folder a module target runs in): what a config stores,
    so the app is found wherever the supervisor and its replicas start."""
    target = parse_target(text, base)
    if target.file is not None:
        return str(target.file) + (f":{target.name}" if target.name else ""), None
    return target.text, str((base or Path.cwd()).resolve())


def portable_target(text: str, app_dir: str | None = None) -> tuple[str, Path]:
    """(the target relative to the app's folder, that folder): for replicas whose working
    directory is a copy of the folder (Ray's working_dir, on a cluster)."""
    target = parse_target(text)
    folder = app_folder(target, app_dir)
    relative = target.file.relative_to(folder).as_posix() if target.file else target.module
    return relative + (f":{target.name}" if target.name else ""), folder


def app_folder(target: Target, app_dir: str | None = None) -> Path:
    """Where the app runs and imports from."""
    if app_dir:
        return Path(app_dir).expanduser().resolve()
    return target.file.parent if target.file else Path.cwd()


def check_file(path: Path) -> None:
    if not path.exists():
        raise AppLoadError(f"{path} does not exist", "check the path of your app's .py file")
    if not path.is_file():
        raise AppLoadError(f"{path} is not a file", "give the app's .py file, e.g. path/to/demo.py")
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise AppLoadError(f"cannot read {path}: {exc.strerror}", "check the file's permissions") from None
    try:
        compile(source, str(path), "exec")
    except SyntaxError as exc:
        raise AppLoadError(f"{path}, line {exc.lineno}: {exc.msg}",
                           "fix the syntax error; `python -m py_compile FILE` shows it too") from None
