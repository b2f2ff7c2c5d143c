"""Finding and importing a user's Gradio app from a TARGET, as uvicorn and `gradio demo.py` do.

TARGET is `path/to/demo.py`, `path/to/demo.py:NAME` or `package.module:NAME`. NAME is a
`gr.Blocks` (an Interface, ChatInterface, ... are Blocks too) or a function without
arguments that returns one. Without NAME, the module's one top-level Blocks is used;
Blocks rendered inside another (the tabs of a TabbedInterface) do not count.

The app runs in its own folder (relative paths, sibling imports). It is imported under
its own module name, never as `__main__`, so `if __name__ == "__main__": demo.launch()`
does not run; a bare top-level `demo.launch()` is skipped too (its styling arguments are
kept), because the replica serves the app itself.

Every failure is an AppLoadError whose message names the file and line and says what
to do. `python -m serving.replica.app_target TARGET --json` reports what a TARGET holds, without
starting anything: the launcher and the supervisor's preflight run it in a child process
so that the user's code never runs inside them. Parsing a TARGET, without importing it, is
serving/core/target.py's (light: the launcher uses it).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import os
import shutil
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from serving.core.inspection import Inspection
from serving.core.target import (  # noqa: F401 - absolute_target and portable_target: re-exported
    AppLoadError,
    Target,
    absolute_target,
    app_folder,
    check_file,
    parse_target,
    portable_target,
)

# What a TARGET names, parsed and checked without importing it (light: the launcher uses it too);
# re-exported, as callers have always found it here.
from serving.replica.launch_settings import (
    Call,
    SettingError,
    Settings,
    parameters,
    read_unrun_calls,
    recorded_call,
    settle,
)
from serving.replica.serve_app import find_serve_app


@dataclass
class LoadedApp:
    blocks: object  # gr.Blocks
    name: str  # how it was found: "demo", or "build_demo()"
    kind: str  # "gr.Blocks", "gr.ChatInterface", ...
    file: str  # the file it came from
    settings: Settings = field(default_factory=Settings)  # what its launch() and queue() calls ask
    application: object | None = None  # a Serve application file: its Application (blocks is then None)
    module: str = ""  # the name it was imported under


def load_app(target: Target | str, app_dir: str | None = None, login_given: bool = False) -> LoadedApp:
    """Import the app in this process (a replica, or the inspector) and find its Blocks and its settings.
    `login_given`: our --username/--password replace the app's own login (else one we cannot read refuses)."""
    target = parse_target(target) if isinstance(target, str) else target
    folder = app_folder(target, app_dir)
    if target.file is not None:
        check_file(target.file)
    if not folder.is_dir():
        raise AppLoadError(f"the app's folder {folder} does not exist", "check --app and app_dir")
    os.chdir(folder)
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    launches: list[tuple[object, Call]] = []
    module = _import(target, launches)
    file = getattr(module, "__file__", None) or target.where
    serve_app = find_serve_app(module, target)
    if serve_app is not None:
        if login_given:
            raise AppLoadError("--username/--password do not apply to a Serve application file",
                               "give the login to its ingress: GradioIngress(builder, mount_kwargs={'auth': ...})")
        return LoadedApp(None, serve_app.name, serve_app.kind, file, application=serve_app.application,
                         module=module.__name__)
    blocks, name = _find_blocks(module, target)
    try:
        settings = settle(_launch_calls(module, blocks, name, launches), file, login_given)
    except SettingError as exc:
        raise AppLoadError(str(exc), exc.hint) from None
    return LoadedApp(blocks, name, kind_of(blocks), file, settings, module=module.__name__)


def _launch_calls(module, served, name: str, launches: list[tuple[object, Call]]) -> list[Call]:
    """The file's launch() and queue() calls that concern the served app, in the order they would run:
    those that ran at import, then those of the main block and functions. A call on another of the
    file's apps is left out; with a builder every call counts (its app is built anew here)."""
    builder = name.endswith("()")
    others = {n for n, b in top_level_blocks(module) if b is not served} if not builder else set()
    ran = [call for owner, call in launches if builder or not any(owner is vars(module).get(n) for n in others)]
    path = getattr(module, "__file__", None)
    unrun = read_unrun_calls(path, vars(module), others, {c.line for _, c in launches if c.line}) if path else []
    return ran + unrun


def kind_of(blocks: object) -> str:
    cls = type(blocks)
    return f"gr.{cls.__name__}" if cls.__module__.startswith("gradio") else f"{cls.__module__}.{cls.__name__}"


@contextlib.contextmanager
def _launch_skipped(launches: list[tuple[object, Call]], file: Path | None):
    """A top-level `demo.launch()` would start a second server and block: record it instead."""
    import gradio as gr

    original = gr.Blocks.launch
    parameters("launch")  # its names, read before the patch hides them

    def launch(self, *args, **kwargs):
        frame, line = sys._getframe(1), None
        while frame is not None and file is not None:
            if Path(frame.f_code.co_filename) == file:
                line = frame.f_lineno
                break
            frame = frame.f_back
        launches.append((self, recorded_call("launch", args, kwargs, line)))
        return None, None, None  # what launch() returns when it does not block: (app, local, share url)

    gr.Blocks.launch = launch
    try:
        yield
    finally:
        gr.Blocks.launch = original


def _import(target: Target, launches: list[tuple[object, Call]]):
    try:
        with _launch_skipped(launches, target.file):
            if target.file is None:
                return importlib.import_module(target.module)
            name = _module_name(target.file)
            spec = importlib.util.spec_from_file_location(name, target.file)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module  # dataclasses, pickling and `from demo import x` need it
            try:
                spec.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(name, None)
                raise
            return module
    except AppLoadError:
        raise
    except SystemExit as exc:
        raise AppLoadError(f"{target.where} called sys.exit({exc.code!r}) while being imported",
                           "move that call under `if __name__ == \"__main__\":`") from None
    except ModuleNotFoundError as exc:
        where = _user_frame(exc, target)
        if target.file is None and exc.name == target.module:
            raise AppLoadError(f"no module named {target.module!r} (from {os.getcwd()})",
                               "give the app's .py file, or start from the folder that holds the package") from None
        raise AppLoadError(f"{where}imports {exc.name!r}, which is not installed here",
                           f"install it into the same environment (`pip install {(exc.name or '').split('.')[0]}`)"
                           ) from None
    except Exception as exc:  # noqa: BLE001 - any error in the user's code, told with its place
        raise AppLoadError(f"{_user_frame(exc, target)}{type(exc).__name__}: {exc}",
                           "fix the error in your app; it also happens with `python FILE`") from None


def _module_name(path: Path) -> str:
    name = path.stem if path.stem.isidentifier() else "gradio_app"
    # A file named like a module already loaded here (app.py, gradio.py, ...) must not replace it.
    return name if name not in sys.modules else f"_gradio_serve_app_{name}"


def _user_frame(exc: BaseException, target: Target) -> str:
    """'demo.py, line 7: ' for the innermost frame in the user's file (or folder)."""
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if target.file and Path(f.filename) == target.file]
    if not mine:
        folder = str(app_folder(target))
        mine = [f for f in frames if f.filename.startswith(folder)]
    if not mine:
        return f"{target.where}: "
    return f"{mine[-1].filename}, line {mine[-1].lineno}: "


def _find_blocks(module, target: Target):
    import gradio as gr

    where = getattr(module, "__file__", None) or target.where
    if target.name:
        if not hasattr(module, target.name):
            found = ", ".join(_describe(module)) or "no gr.Blocks"
            raise AppLoadError(f"{where} has no top-level {target.name!r} (found: {found})",
                               "check the name after the colon")
        obj = getattr(module, target.name)
        if isinstance(obj, gr.Blocks):
            return obj, target.name
        if callable(obj):
            try:
                built = obj()
            except Exception as exc:  # noqa: BLE001 - the user's builder
                raise AppLoadError(f"{_user_frame(exc, target)}{target.name}() raised {type(exc).__name__}: {exc}",
                                   "fix the builder; it must build the app without arguments") from None
            if not isinstance(built, gr.Blocks):
                raise AppLoadError(f"{target.name}() in {where} returned {type(built).__name__}, not a gr.Blocks",
                                   "return the gr.Blocks / gr.Interface / gr.ChatInterface it builds")
            return built, f"{target.name}()"
        raise AppLoadError(f"{target.name} in {where} is {_a(type(obj).__name__)}, not a gr.Blocks or a builder",
                           "name a gr.Blocks (Interface, ChatInterface, ...) or a function that returns one")
    candidates = top_level_blocks(module)
    if len(candidates) == 1:
        return candidates[0][1], candidates[0][0]
    if not candidates:
        builders = [n for n, v in vars(module).items()
                    if callable(v) and getattr(v, "__module__", None) == module.__name__ and not n.startswith("_")]
        hint = "create it at the top level (demo = gr.Blocks() / gr.Interface(...))"
        if builders:
            hint += f", or name a function that builds it: {target.text}:{builders[0]}"
        raise AppLoadError(f"no gr.Blocks found at the top level of {where}"
                           + (f" (functions: {', '.join(builders[:6])})" if builders else ""), hint)
    names = ", ".join(f"{n} ({kind_of(b)})" for n, b in candidates)
    raise AppLoadError(f"{where} has several Gradio apps: {names}",
                       f"pick one: {target.text}:{candidates[0][0]}")


def _a(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def top_level_blocks(module) -> list[tuple[str, object]]:
    """(name, Blocks) at the module's top level, one name per object, without those nested in another."""
    import gradio as gr

    seen: dict[int, tuple[str, object]] = {}
    for name, value in vars(module).items():
        if isinstance(value, gr.Blocks) and not name.startswith("_") and id(value) not in seen:
            seen[id(value)] = (name, value)
    found = list(seen.values())

    def nested(blocks) -> bool:
        ids = set(blocks.blocks)
        return any(other is not blocks and ids < set(other.blocks) for _, other in found)

    return [(n, b) for n, b in found if not nested(b)]


def _describe(module) -> list[str]:
    return [f"{n} ({kind_of(b)})" for n, b in top_level_blocks(module)]


def inspect_target(text: str, app_dir: str | None = None, login_given: bool = False) -> Inspection:
    try:
        target = parse_target(text)
        folder = str(target.folder(app_dir))
        app = load_app(target, app_dir, login_given)
    except AppLoadError as exc:
        return Inspection(ok=False, target=text, app_dir=app_dir, error=str(exc), hint=exc.hint)
    return Inspection(ok=True, target=text, app_dir=app_dir, folder=folder, file=app.file, name=app.name,
                      kind=app.kind, warnings=app.settings.warnings, serve_app=app.application is not None)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m serving.replica.app_target",
                                description="Say which Gradio app a TARGET holds (imports it; starts nothing).")
    p.add_argument("target", help="path/to/demo.py, path/to/demo.py:NAME or package.module:NAME")
    p.add_argument("--app-dir", help="folder the app runs in (default: the file's folder)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--login-given", action="store_true",
                   help="a login is given with --username/--password (it replaces the app's own)")
    p.add_argument("--when-asked", action="store_true",
                   help="import Gradio now, then check the app once for each line that comes on stdin, each "
                        "time in a fork of this warm process (a reload's check); 'done CODE' follows each answer")
    args = p.parse_args(argv)
    out = sys.stdout
    # The user's code may print; keep stdout for the answer.
    sys.stdout = sys.stderr
    if not args.when_asked:
        return _answer(args, out)
    import gradio as gr  # the slow part, done once, before the saves it will check

    with gr.Blocks():  # and what Gradio imports on its first Blocks (its routes)
        pass
    out.flush()
    while sys.stdin.readline():
        # A fork per check: the app is imported anew each time (its modules were never imported
        # here), Gradio not at all.
        child = os.fork()
        if child == 0:
            import tempfile

            # Bytecode of its own: a .pyc of the same second and size as the saved file would be stale.
            sys.pycache_prefix = tempfile.mkdtemp(prefix="gradio-serve-pyc-")
            code = _answer(args, out)
            shutil.rmtree(sys.pycache_prefix, ignore_errors=True)
            os._exit(code)  # at once: a second of teardown would slow the replicas' swap
        _, status = os.waitpid(child, 0)
        out.write(f"done {os.waitstatus_to_exitcode(status)}\n")
        out.flush()
    return 0


def _answer(args, out) -> int:
    result = inspect_target(args.target, args.app_dir, args.login_given)
    if args.json:
        out.write(result.to_line() + "\n")
    elif result.ok:
        out.write(f"{result.name} · {result.kind} in {result.file}\n")
        out.writelines(f"warning: {w}\n" for w in result.warnings)
    else:
        out.write(f"error: {result.error}\n" + (f"  hint: {result.hint}\n" if result.hint else ""))
    out.flush()
    return 0 if result.ok else 2


if __name__ == "__main__":
    sys.exit(main())
