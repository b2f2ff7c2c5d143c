"""The command line's configuration flags (`gradio-serve up`, `apply` and `export`), and how they go over
a configuration: a config file, the running app's configuration (apply) or the mode's default, then
Gradio's own environment variables, then the flags; validated once, as a whole, by LaunchConfig.

The flags become one typed ConfigOverrides, merged once by its over(): the CLI's flags and the
launcher's (--config, --port) alike. Light (argparse, pydantic and the core's config): the CLI and the
launcher use it, and the tests drive it directly.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from serving.core.config import (
    DTYPES,
    ConfigError,
    Dtype,
    LaunchConfig,
    Mode,
    ModelSlot,
    default_config,
    read_config_file,
)


def add_config_flags(p: argparse.ArgumentParser) -> None:
    """The flags that make or change a configuration (up, apply, export)."""
    p.add_argument("--config", metavar="FILE",
                   help="launch configuration (JSON or YAML, also a file `export` wrote); the flags below override it")
    p.add_argument("--mode", choices=[m.value for m in Mode],
                   help="summarize: one model; fanout: one prompt to several; app: your own (see --app)")
    p.add_argument("--app", metavar="TARGET",
                   help="serve your own Gradio app, unchanged: path/to/demo.py, path/to/demo.py:NAME or "
                        "package.module:NAME (NAME: a gr.Blocks/Interface or a function returning one)")
    p.add_argument("--app-dir", metavar="DIR", help="folder your app runs in (default: the file's folder)")
    p.add_argument("--model", action="append", dest="models", metavar="REF",
                   help="catalog name, hub id or local folder; repeat for fan-out (slot order = output order)")
    p.add_argument("--num-cpus", type=float, action="append", metavar="N",
                   help="CPUs per replica (once for all models, or once per --model)")
    p.add_argument("--num-gpus", type=float, action="append", metavar="N", help="GPUs per replica (fractions ok)")
    p.add_argument("--replicas", type=int, action="append", metavar="N", help="replicas per model")
    p.add_argument("--dtype", action="append", choices=DTYPES,
                   help="weights' precision per model (auto: bfloat16 on a CPU with native bfloat16 (AVX-512 BF16, AMX), else float32; bfloat16, else float16, on a GPU)")
    p.add_argument("--min-replicas", type=int, action="append", metavar="N",
                   help="autoscale: fewest replicas per model (any autoscale flag turns autoscaling on)")
    p.add_argument("--max-replicas", type=int, action="append", metavar="N", help="autoscale: most replicas per model")
    p.add_argument("--target-ongoing-requests", type=float, action="append", metavar="N",
                   help="autoscale: requests per replica Serve aims for")
    p.add_argument("--session-drain", type=float, metavar="S", dest="session_drain_s",
                   help="your app: a replica that scaling removes keeps serving its sessions while in use, "
                        "for at most S seconds (default 60; 0: it stops at once)")
    p.add_argument("--cpus", type=int, help="CPUs of the local Ray cluster (default: all)")
    p.add_argument("--gpus", type=int, help="GPUs of the local Ray cluster (default: detected)")
    p.add_argument("--address", help="deploy to an existing Ray cluster ('auto', host:port, ray://host:port)")
    p.add_argument("--allow-join", metavar="IP[:PORT]", dest="join_address",
                   help="let other machines join this one's cluster (`gradio-serve join`): its Ray head listens on "
                        "this LAN address (port 6379 by default), with a token; the app's port stays as it is")
    p.add_argument("--port", type=int, help="HTTP port (default: $GRADIO_SERVER_PORT, else 8000)")
    p.add_argument("--host", help="interface to listen on (default: $GRADIO_SERVER_NAME, else 127.0.0.1)")
    p.add_argument("--root-path", metavar="PATH", help="behind a reverse proxy: the URL prefix it serves the app "
                                                       "under, e.g. /gradio (Gradio's root_path)")
    p.add_argument("--username", help="Gradio login, required when --host is not loopback; the password comes "
                                      "from --password-file, $GRADIO_SERVE_PASSWORD or a prompt")
    p.add_argument("--password-file", metavar="FILE", help="read the login's password from FILE (first line)")
    # On the command line a password shows in `ps` and the shell's history: still taken, with a warning.
    p.add_argument("--password", help=argparse.SUPPRESS)
    p.add_argument("--dashboard", action="store_true", help="start Ray's dashboard on 127.0.0.1")
    p.add_argument("--trust-remote-code", action="store_true", help="run code shipped with the models")


def _per_slot(values: list | None, n: int, flag: str) -> list | None:
    if not values:
        return None
    if len(values) == 1:
        return values * n
    if len(values) != n:
        raise ConfigError(f"{flag} was given {len(values)} times for {n} models; give it once, or once per --model")
    return values


class ConfigOverrides(BaseModel):
    """What a command line asks on top of a configuration: `gradio-serve up/apply/export`'s flags (the
    names of add_config_flags' destinations), or the launcher's --config and --port. None: not asked.
    Merged once, by over(), for both."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    config: str | None = Field(None, description="A config file; it replaces the base.")
    mode: Mode | None = None
    app: str | None = None
    app_dir: str | None = None
    models: list[str] | None = None
    # Per model slot (once for all, or once per --model); for your app, once.
    num_cpus: list[float] | None = None
    num_gpus: list[float] | None = None
    replicas: list[int] | None = None
    dtype: list[Dtype] | None = None
    min_replicas: list[int] | None = None
    max_replicas: list[int] | None = None
    target_ongoing_requests: list[float] | None = None
    session_drain_s: float | None = None
    reload: bool = False  # `up --reload` only
    cpus: int | None = None
    gpus: int | None = None
    address: str | None = None
    join_address: str | None = None
    port: int | None = None
    host: str | None = None
    root_path: str | None = None
    username: str | None = None
    password: str | None = None
    password_file: str | None = None
    dashboard: bool = False
    trust_remote_code: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ConfigOverrides:
        return cls(**{k: v for k in cls.model_fields if (v := getattr(args, k, None)) is not None})

    def over(self, base: LaunchConfig | dict | None = None, *, from_environment: bool = True) -> LaunchConfig:
        """Config file (or `base`, or the mode's default), then what a terminal offers (Gradio's
        variables, $GRADIO_SERVE_PASSWORD, a password prompt; not for the window: `from_environment`
        False), then these on top; validated as a whole."""
        return _merge(self, base.model_dump(mode="json") if isinstance(base, LaunchConfig) else base,
                      from_environment)


def config_from_args(args: argparse.Namespace, base: dict | None = None) -> LaunchConfig:
    """Config file (or `base`, or the mode's default), then the flags on top; validated as a whole."""
    return ConfigOverrides.from_args(args).over(base)


def _merge(args: ConfigOverrides, base: dict | None, from_environment: bool) -> LaunchConfig:
    wants_app = bool(args.app) or args.mode == Mode.app.value
    explicit_http: set[str] = set()  # what the file (or the running app) decides: env defaults do not apply
    if args.config:
        raw, base_dir = read_config_file(args.config)
        data = LaunchConfig.from_dict(raw).model_dump(mode="json")
        explicit_http = set((raw.get("http") or {}).keys())
        _warn_if_password_readable(args.config, data)
        if data.get("app") and not args.app:  # a relative target is relative to the config file
            from serving.core.target import absolute_target

            target, module_dir = absolute_target(data["app"]["target"], base_dir)
            data["app"]["target"] = target
            data["app"]["app_dir"] = data["app"]["app_dir"] or module_dir
    elif base:
        data = LaunchConfig.from_dict(base).model_dump(mode="json")
        explicit_http = {"port", "host"}
    elif wants_app:
        data = LaunchConfig(mode=Mode.summarize).model_dump(mode="json") | {"mode": "app", "models": [], "app": None}
    else:
        data = default_config(args.mode or Mode.summarize).model_dump(mode="json")
    # Gradio's own variables, as its users expect them to work.
    for key, var in (("port", "GRADIO_SERVER_PORT"), ("host", "GRADIO_SERVER_NAME")):
        if from_environment and key not in explicit_http and os.environ.get(var):
            value = os.environ[var]
            if key == "port" and not value.isdigit():
                raise ConfigError(f"{var}={value!r} is not a port number")
            data["http"][key] = int(value) if key == "port" else value
    if args.mode:
        data["mode"] = args.mode
    if args.app:
        from serving.core.target import AppLoadError, absolute_target

        try:
            target, module_dir = absolute_target(args.app)
        except AppLoadError as exc:
            raise ConfigError(f"--app: {exc}" + (f"\n  {exc.hint}" if exc.hint else "")) from None
        data.update(mode=Mode.app.value, models=[])
        data["app"] = {**(data.get("app") or {}), "target": target}
        if module_dir and not args.app_dir:
            data["app"]["app_dir"] = module_dir
    if args.app_dir:
        if not data.get("app"):
            raise ConfigError("--app-dir goes with --app (your own Gradio app)")
        data["app"]["app_dir"] = str(os.path.abspath(args.app_dir))
    if data.get("mode") == Mode.app.value:
        return _app_flags(args, data, from_environment)
    if args.reload:
        raise ConfigError("--reload reloads your own app when its files change: it goes with --app")
    if args.models:
        # A config file's (or the running app's) slots keep their settings; the built-in defaults do not.
        old = data["models"] if args.config or base else []
        fresh = ModelSlot().model_dump(mode="json")
        data["models"] = [{**(old[i] if i < len(old) else fresh), "model": ref} for i, ref in enumerate(args.models)]
    elif args.mode == Mode.summarize.value and len(data["models"]) > 1 and not (args.config or base):
        data["models"] = data["models"][:1]
    n = len(data["models"])
    for flag, key in (("--num-cpus", "num_cpus"), ("--num-gpus", "num_gpus"), ("--replicas", "replicas"),
                      ("--dtype", "dtype")):
        values = _per_slot(getattr(args, key), n, flag)
        for slot, value in zip(data["models"], values or [], strict=False):  # no values: nothing to set
            slot[key] = value
    for flag, key in (("--min-replicas", "min_replicas"), ("--max-replicas", "max_replicas"),
                      ("--target-ongoing-requests", "target_ongoing_requests")):
        values = _per_slot(getattr(args, key), n, flag)
        for slot, value in zip(data["models"], values or [], strict=False):
            slot["autoscaling"] = {**(slot.get("autoscaling") or {}), key: value}
    if args.trust_remote_code:
        for slot in data["models"]:
            slot["trust_remote_code"] = True
    _cluster_and_http_flags(args, data, from_environment)
    return LaunchConfig.from_dict(data)


def _cluster_and_http_flags(args: ConfigOverrides, data: dict, from_environment: bool) -> None:
    cluster, http = data["cluster"], data["http"]
    for key, value in (("num_cpus", args.cpus), ("num_gpus", args.gpus), ("address", args.address),
                       ("join_address", args.join_address)):
        if value is not None:
            cluster[key] = value
    if args.dashboard:
        cluster["include_dashboard"] = True
    for key in ("port", "host", "root_path", "username"):
        if getattr(args, key) is not None:
            http[key] = getattr(args, key)
    password = _password(args, from_environment)
    if password is not None:
        http["password"] = password
    elif from_environment and http.get("username") and not http.get("password") and sys.stdin.isatty():
        import getpass

        http["password"] = getpass.getpass(f"Password for {http['username']}: ") or None


def _password(args: ConfigOverrides, from_environment: bool) -> str | None:
    """The login's password, from anywhere but the command line if possible."""
    if args.password_file:
        try:
            return Path(args.password_file).read_text(encoding="utf-8").splitlines()[0].strip() or None
        except (OSError, IndexError) as exc:
            raise ConfigError(f"--password-file {args.password_file}: cannot read a password from it "
                              f"({getattr(exc, 'strerror', None) or 'it is empty'})") from None
    if args.password is not None:
        print("warning: --password shows in `ps` and in your shell's history; use --password-file FILE "
              "or GRADIO_SERVE_PASSWORD instead", file=sys.stderr)
        return args.password
    return (os.environ.get("GRADIO_SERVE_PASSWORD") or None) if from_environment else None


def _warn_if_password_readable(path: str, data: dict) -> None:
    if (data.get("http") or {}).get("password") and os.stat(path).st_mode & 0o077:
        print(f"warning: {path} holds a password and other users can read it: chmod 600 {path}", file=sys.stderr)


def _app_flags(args: ConfigOverrides, data: dict, from_environment: bool) -> LaunchConfig:
    """Mode app: the replica and resource flags apply to your app; model flags make no sense."""
    if args.models:
        raise ConfigError("--model picks models for the built-in apps; with --app your own app is served. "
                          "Drop --model, or drop --app")
    if data.get("app") is None:
        raise ConfigError("mode app serves your own Gradio app: give it with --app path/to/demo.py")
    app = data["app"]
    for flag, key in (("--num-cpus", "num_cpus"), ("--num-gpus", "num_gpus"), ("--replicas", "replicas")):
        values = _per_slot(getattr(args, key), 1, flag)
        if values:
            app[key] = values[0]
    for flag, key in (("--min-replicas", "min_replicas"), ("--max-replicas", "max_replicas"),
                      ("--target-ongoing-requests", "target_ongoing_requests")):
        values = _per_slot(getattr(args, key), 1, flag)
        if values:
            app["autoscaling"] = {**(app.get("autoscaling") or {}), key: values[0]}
    if args.session_drain_s is not None:
        app["session_drain_s"] = args.session_drain_s
    if args.reload:
        app["reload"] = True
    if args.replicas and not any((args.min_replicas, args.max_replicas, args.target_ongoing_requests)):
        app["autoscaling"] = None  # a fixed count asked for replaces autoscaling
    _cluster_and_http_flags(args, data, from_environment)
    return LaunchConfig.from_dict(data)
