"""What a TARGET names, found and checked without importing it: `path/to/demo.py`,
`path/to/demo.py:NAME` or `package.module:NAME` (NAME: a gr.Blocks or a function returning one).

The light half of serving/replica/app_target.py, which imports the app: the launcher, the CLI and the
supervisor parse a target once into a `Target` where it enters, and ask that object for the rest (the
form a config stores, the folder the app runs in, the form a copied folder needs, the file's state),
without Gradio and without running the user's code. (Not to be confused with serving/core/config.py's
AppSpec, the config's section that holds the target's text with the app's resources.)
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
    """A TARGET parsed: a file or a module, and an optional NAME."""

    text: str
    file: Path | None  # a .py file, absolute
    module: str | None  # or a dotted module name
    name: str | None  # the attribute, or None: find the one Blocks

    @classmethod
    def parse(cls, text: str, base: Path | None = None) -> Target:
        return parse_target(text, base)

    @property
    def where(self) -> str:
        return str(self.file) if self.file else self.module or self.text

    @property
    def absolute(self) -> str:
        """The target with an absolute file path (":NAME" kept): what a config stores, so it means the
        same from any folder; a module target as given."""
        return str(self.file) + (f":{self.name}" if self.name else "") if self.file else self.text

    @property
    def short_name(self) -> str:
        """demo.py for a file target, the module for a module one (what "Checking …" names)."""
        return self.file.name if self.file else self.module or self.text

    def folder(self, app_dir: str | None = None) -> Path:
        """Where the app runs and imports from."""
        if app_dir:
            return Path(app_dir).expanduser().resolve()
        return self.file.parent if self.file else Path.cwd()

    def portable(self, app_dir: str | None = None) -> tuple[str, Path]:
        """(the target relative to the app's folder, that folder): for replicas whose working
        directory is a copy of the folder (Ray's working_dir, on a cluster)."""
        folder = self.folder(app_dir)
        relative = self.file.relative_to(folder).as_posix() if self.file else self.module
        return relative + (f":{self.name}" if self.name else ""), folder

    def stamp(self) -> tuple[int, int] | None:
        """The file's (mtime_ns, size): a check made at another stamp is out of date. None: no file."""
        try:
            st = self.file.stat() if self.file else None
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size) if st else None


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


def try_parse(text: str, base: Path | None = None) -> Target | None:
    """The parsed target, or None for text that is not one (yet: the user is typing)."""
    try:
        return parse_target(text, base) if text.strip() else None
    except AppLoadError:
        return None


def absolute_target(text: str, base: Path | None = None) -> tuple[str, str | None]:
    """(target with an absolute file path, the folder a module target runs in): what a config stores,
    so the app is found wherever the supervisor and its replicas start."""
    target = parse_target(text, base)
    return target.absolute, None if target.file else str((base or Path.cwd()).resolve())


def portable_target(text: str, app_dir: str | None = None) -> tuple[str, Path]:
    return parse_target(text).portable(app_dir)


def app_folder(target: Target, app_dir: str | None = None) -> Path:
    return target.folder(app_dir)


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
