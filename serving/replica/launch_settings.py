"""What a user's app asks of Gradio's `launch()` and `queue()`, and what becomes of each setting when served.

`python demo.py` runs `demo.launch(...)`, often under `if __name__ == "__main__":`. A replica never
runs it: it mounts the app with `gr.mount_gradio_app`, whose defaults differ (it shows exceptions'
text to every visitor, where launch() hides it). So the file's launch() and queue() calls are read,
wherever they are (top level, the main block, a function), and every setting is honoured, replaced
by one of our flags, or named in a warning. A login that cannot be read (computed from the main
block's locals, say) refuses the start, unless our own --username/--password give one: an author's
login is never lost. So does TLS, which a replica cannot serve.

LAUNCH and QUEUE give the fate of every parameter; the README's table is made from them and
tests/test_launch_settings.py checks both against Gradio's own signatures.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path

HONOURED, FLAG, NOT_APPLICABLE, REFUSED = "honoured", "our flag", "not applicable", "refused"

LAUNCH: dict[str, tuple[str, str]] = {
    "inline": (NOT_APPLICABLE, "shows the app in a notebook; a served app has none"),
    "inbrowser": (FLAG, "`--open`"),
    "share": (NOT_APPLICABLE, "no public share link; `--host` with `--username/--password` serves beyond this machine"),
    "debug": (NOT_APPLICABLE, "the replica's errors are in the supervisor's log"),
    "max_threads": (HONOURED, "per replica"),
    "auth": (HONOURED, "`--username/--password` win over it"),
    "auth_message": (HONOURED, ""),
    "prevent_thread_lock": (NOT_APPLICABLE, "the replica serves the app; nothing blocks"),
    "show_error": (HONOURED, "off unless the app turns it on, as launch() does (mount_gradio_app's default is on)"),
    "server_name": (FLAG, "`--host` (loopback unless you ask)"),
    "server_port": (FLAG, "`--port`"),
    "height": (NOT_APPLICABLE, "notebook only"),
    "width": (NOT_APPLICABLE, "notebook only"),
    "favicon_path": (HONOURED, ""),
    "ssl_keyfile": (REFUSED, "the app's port speaks plain HTTP: put a TLS proxy in front, and remove ssl_* from launch()"),
    "ssl_certfile": (REFUSED, "as ssl_keyfile"),
    "ssl_keyfile_password": (REFUSED, "as ssl_keyfile"),
    "ssl_verify": (NOT_APPLICABLE, "only for share links"),
    "quiet": (NOT_APPLICABLE, "the supervisor prints what it does"),
    "footer_links": (HONOURED, ""),
    "run_history": (HONOURED, "also GRADIO_RUN_HISTORY"),
    "allowed_paths": (HONOURED, "also GRADIO_ALLOWED_PATHS, as launch() reads it"),
    "blocked_paths": (HONOURED, "also GRADIO_BLOCKED_PATHS, as launch() reads it"),
    "root_path": (HONOURED, "also GRADIO_ROOT_PATH; `--root-path` wins"),
    "app_kwargs": (HONOURED, ""),
    "state_session_capacity": (HONOURED, "per replica"),
    "share_server_address": (NOT_APPLICABLE, "only for share links"),
    "share_server_protocol": (NOT_APPLICABLE, "only for share links"),
    "share_server_tls_certificate": (NOT_APPLICABLE, "only for share links"),
    "auth_dependency": (HONOURED, "`--username/--password` replace it"),
    "max_file_size": (HONOURED, ""),
    "enable_monitoring": (HONOURED, ""),
    "strict_cors": (NOT_APPLICABLE, "Gradio's strict CORS stays on (mount_gradio_app cannot loosen it)"),
    "node_server_name": (HONOURED, "server-side rendering's Node server"),
    "node_port": (HONOURED, "server-side rendering's Node server"),
    "ssr_mode": (HONOURED, "also GRADIO_SSR_MODE"),
    "pwa": (HONOURED, ""),
    "mcp_server": (HONOURED, "also GRADIO_MCP_SERVER; both transports (SSE, streamable HTTP) work across replicas"),
    "num_workers": (FLAG, "`--replicas` (each replica is one worker, with sticky sessions)"),
    "_app": (NOT_APPLICABLE, "private"),
    "_frontend": (NOT_APPLICABLE, "private"),
    "i18n": (HONOURED, ""),
    "theme": (HONOURED, ""),
    "css": (HONOURED, ""),
    "css_paths": (HONOURED, ""),
    "js": (HONOURED, ""),
    "head": (HONOURED, ""),
    "head_paths": (HONOURED, ""),
}

QUEUE: dict[str, tuple[str, str]] = {
    "status_update_rate": (HONOURED, ""),
    "api_open": (HONOURED, ""),
    "max_size": (HONOURED, "per replica: N replicas queue up to N × max_size"),
    "default_concurrency_limit": (HONOURED, "per replica"),
}

LOGIN = ("auth", "auth_dependency")
# launch() reads these from the environment when not given; mount_gradio_app does not.
ENV_DEFAULTS = {"root_path": "GRADIO_ROOT_PATH", "allowed_paths": "GRADIO_ALLOWED_PATHS",
                "blocked_paths": "GRADIO_BLOCKED_PATHS"}
# Honoured as attributes of the Blocks, as launch() sets them (mount_gradio_app takes neither).
ATTRIBUTES = ("max_threads", "state_session_capacity")


class SettingError(Exception):
    """A setting we cannot keep: the start is refused. `line` is where the file asks for it."""

    def __init__(self, message: str, hint: str, line: int | None = None):
        super().__init__(message)
        self.hint, self.line = hint, line


@dataclass
class Call:
    """One launch() or queue() call of the file: what could be read of it, and what could not."""

    method: str  # "launch" or "queue"
    line: int | None
    given: dict = field(default_factory=dict)  # parameter -> value
    unreadable: list[str] = field(default_factory=list)  # parameters ("**" for a **mapping) that need the main block


@dataclass
class Settings:
    """What the file's launch() and queue() calls ask of the served app, the last call winning."""

    launch: dict = field(default_factory=dict)
    queue: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@functools.cache
def parameters(method: str) -> dict[str, inspect.Parameter]:
    """Gradio's own parameters of Blocks.launch or .queue; read once, before the import patches launch()."""
    import gradio as gr

    return {n: p for n, p in inspect.signature(getattr(gr.Blocks, method)).parameters.items() if n != "self"}


def signature_params(method: str) -> list[str]:
    return list(parameters(method))


def recorded_call(method: str, args: tuple, kwargs: dict, line: int | None) -> Call:
    """A call that ran while the file was imported (a top-level demo.launch()): its arguments, by name."""
    names = signature_params(method)
    given = dict(zip(names, args, strict=False))
    given.update(kwargs)
    return Call(method, line, given)


def read_unrun_calls(path: str | Path, namespace: dict, skip_owners: set[str], ran_lines: set[int]) -> list[Call]:
    """launch() and queue() calls that did not run at import (the main block, functions): their arguments,
    evaluated in the module's namespace where they can be. `skip_owners`: names of other apps in the file."""
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return []
    calls: list[Call] = []
    for scope in _unrun_scopes(tree):
        found = [node for stmt in scope for node in ast.walk(stmt) if _method_call(node) in ("launch", "queue")]
        if not any(_method_call(node) == "launch" for node in found):
            continue  # a queue() without a launch() beside it: a builder's own, already run
        for node in sorted(found, key=lambda n: (n.lineno, n.col_offset)):
            if any(node.lineno <= line <= node.end_lineno for line in ran_lines):
                continue
            owner = _owner(node)
            if isinstance(owner, ast.Name) and owner.id in skip_owners:
                continue
            calls.append(_read(node, path, namespace))
    return calls


def _unrun_scopes(tree: ast.Module) -> list[list[ast.stmt]]:
    """Bodies that importing the file does not run: `if __name__ == "__main__":` and every function's."""
    scopes = []
    for stmt in tree.body:
        if isinstance(stmt, ast.If) and "__main__" in ast.unparse(stmt.test) and "__name__" in ast.unparse(stmt.test):
            scopes.append(stmt.body)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            scopes.append(node.body)
    return scopes


def _method_call(node: ast.AST) -> str | None:
    return node.func.attr if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) else None


def _owner(node: ast.Call) -> ast.expr:
    """`demo` in demo.launch(), demo.queue().launch() and demo.queue(...)."""
    owner = node.func.value
    while isinstance(owner, ast.Call) and isinstance(owner.func, ast.Attribute):
        owner = owner.func.value
    return owner


def _read(node: ast.Call, path, namespace: dict) -> Call:
    method = node.func.attr
    call = Call(method, node.lineno)
    names = signature_params(method)

    def value(expr: ast.expr):
        return eval(compile(ast.Expression(expr), str(path), "eval"), namespace)

    for i, arg in enumerate(node.args):
        name = "*" if isinstance(arg, ast.Starred) or i >= len(names) else names[i]
        try:
            call.given[name] = value(arg)
        except Exception:  # noqa: BLE001 - a value of the main block's, unknown here
            call.unreadable.append(name)
    for kw in node.keywords:
        try:
            got = value(kw.value)
        except Exception:  # noqa: BLE001 - as above
            call.unreadable.append(kw.arg or "**")
            continue
        if kw.arg is None:
            if isinstance(got, dict):
                call.given.update(got)
            else:
                call.unreadable.append("**")
        else:
            call.given[kw.arg] = got
    return call


def settle(calls: list[Call], file: str, login_given: bool) -> Settings:
    """The settings the calls add up to; SettingError for what cannot be kept."""
    settings = Settings()
    for call in calls:
        where = f"{file}, line {call.line}" if call.line else file
        for name in call.unreadable:
            if name in (*LOGIN, "**", "*") and not login_given:
                raise SettingError(
                    f"{where}: the app's login cannot be read outside `python {Path(file).name}` "
                    f"({call.method}({name if name not in ('*', '**') else '...'}) uses the values of code that only "
                    "runs there), and serving it without its login would open it to everyone",
                    "give the login with --username and --password, or compute it at the top level of the file",
                    call.line)
            if name not in (*LOGIN, "**", "*"):
                settings.warnings.append(f"{where}: {call.method}({name}=...) is not applied: its value comes from "
                                         "code that only runs with `python FILE` (compute it at the top level)")
        table = LAUNCH if call.method == "launch" else QUEUE
        for name, given in call.given.items():
            fate, why = table.get(name, (NOT_APPLICABLE, "not a parameter Gradio knows"))
            if fate == HONOURED:
                (settings.launch if call.method == "launch" else settings.queue)[name] = given
            elif not _is_default(call.method, name, given):
                if fate == REFUSED:
                    raise SettingError(f"{where}: launch({name}=...) cannot be kept when served", why, call.line)
                settings.warnings.append(f"{where}: {call.method}({name}={given!r}) is not applied: {why}")
    return settings


def _is_default(method: str, name: str, value) -> bool:
    param = parameters(method).get(name)
    with contextlib.suppress(Exception):
        return param is not None and value == param.default
    return False


def apply(blocks, settings: Settings, overrides: dict) -> dict:
    """Sets what launch() would set on the Blocks (queue, threads) and returns mount_gradio_app's keyword
    arguments. `overrides`: our own flags (auth, root_path), which win."""
    import gradio as gr

    if settings.queue:
        blocks.queue(**settings.queue)
    launch = dict(settings.launch)
    for name, env in ENV_DEFAULTS.items():
        if launch.get(name) is None and os.environ.get(env):
            value = os.environ[env]
            launch[name] = value if name == "root_path" else [item.strip() for item in value.split(",")]
    if "max_threads" in launch:
        blocks.max_threads = blocks._queue.max_thread_count = launch["max_threads"]
    if "state_session_capacity" in launch:
        blocks.state_session_capacity = launch["state_session_capacity"]
    mount_params = inspect.signature(gr.mount_gradio_app).parameters
    mount = {k: v for k, v in launch.items() if k in mount_params and k not in ATTRIBUTES}
    mount.setdefault("show_error", False)  # launch()'s default: exceptions' text stays hidden
    for name, value in overrides.items():
        if value:
            mount[name] = value
    if overrides.get("auth"):
        mount.pop("auth_dependency", None)  # our login replaces the app's own
    return mount
