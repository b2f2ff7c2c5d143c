"""`gradio-serve`: the headless face of the launcher.

    gradio-serve up [--mode fanout] [--model REF ...] [--config FILE] [--port N] [--open] [--events]
    gradio-serve up --app path/to/demo.py[:NAME] [--replicas N] [--num-cpus N]   (your own Gradio app)
    gradio-serve apply [--model REF ...] [--replicas N ...]     (change the running app in place)
    gradio-serve status [--json]
    gradio-serve down
    gradio-serve models [--json]
    gradio-serve export -o serve-config.yaml
    gradio-serve --version
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from serving.core import paths
from serving.core.config import DTYPES, ConfigError, LaunchConfig, Mode, ModelSlot, default_config, read_config_file

EXAMPLES = """examples:
  gradio-serve up --app demo.py                       your own Gradio app, unchanged
  gradio-serve up --app demo.py:demo --replicas 2     two replicas, sticky sessions
  gradio-serve up                                     the built-in summarizer (embedded model)
  gradio-serve up --mode fanout --model gpt2 --model distilgpt2
  gradio-serve apply --replicas 3                     change the running app in place
  gradio-serve status | down | models
  gradio-serve export --app demo.py -o serve-config.yaml

environment: GRADIO_SERVER_PORT and GRADIO_SERVER_NAME set the default port and host (as for
Gradio); GRADIO_SERVE_PASSWORD the login's password; HF_HUB_OFFLINE=1 uses cached models only.
logs: {log}
"""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gradio-serve-launcher")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gradio-serve", description="Run and scale Gradio apps with Ray Serve.",
                                epilog=EXAMPLES.format(log=paths.supervisor_log()),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="start serving (foreground; Ctrl-C stops everything)",
                        description="Start serving: a local Ray cluster (or --address), the app, until Ctrl-C.",
                        epilog=EXAMPLES.format(log=paths.supervisor_log()),
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    _config_args(up)
    up.add_argument("--open", action="store_true", help="open the browser when the app is ready")
    up.add_argument("--events", action="store_true", help=argparse.SUPPRESS)  # the launcher's protocol

    ap = sub.add_parser("apply", help="change the running app in place (models, replicas, settings); "
                                      "the cluster stays up and unchanged replicas keep running")
    _config_args(ap)
    ap.add_argument("--timeout", type=float, default=900, help="seconds to wait for the change (default 900)")

    st = sub.add_parser("status", help="show what is running")
    st.add_argument("--json", action="store_true", help="one JSON object (record, phase, deployments)")
    sub.add_parser("down", help="stop the running app")
    models = sub.add_parser("models", help="list the models that can be served")
    models.add_argument("--json", action="store_true", help="a JSON list")

    ex = sub.add_parser("export", help="write a Serve config file for `serve deploy`")
    _config_args(ex)
    ex.add_argument("-o", "--output", default="-", help="file to write (default: stdout)")
    ex.add_argument("--kuberay", action="store_true", help="wrap it in a KubeRay RayService manifest")
    return p


def _config_args(p: argparse.ArgumentParser) -> None:
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
    p.add_argument("--cpus", type=int, help="CPUs of the local Ray cluster (default: all)")
    p.add_argument("--gpus", type=int, help="GPUs of the local Ray cluster (default: detected)")
    p.add_argument("--address", help="deploy to an existing Ray cluster ('auto', host:port, ray://host:port)")
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


def config_from_args(args: argparse.Namespace, base: dict | None = None) -> LaunchConfig:
    """Config file (or `base`, or the mode's default), then the flags on top; validated as a whole."""
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
        if key not in explicit_http and os.environ.get(var):
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
        return _app_flags(args, data)
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
    _cluster_and_http_flags(args, data)
    return LaunchConfig.from_dict(data)


def _cluster_and_http_flags(args: argparse.Namespace, data: dict) -> None:
    cluster, http = data["cluster"], data["http"]
    for key, value in (("num_cpus", args.cpus), ("num_gpus", args.gpus), ("address", args.address)):
        if value is not None:
            cluster[key] = value
    if args.dashboard:
        cluster["include_dashboard"] = True
    for key in ("port", "host", "root_path", "username"):
        if getattr(args, key) is not None:
            http[key] = getattr(args, key)
    password = _password(args)
    if password is not None:
        http["password"] = password
    elif http.get("username") and not http.get("password") and sys.stdin.isatty():
        import getpass

        http["password"] = getpass.getpass(f"Password for {http['username']}: ") or None


def _password(args: argparse.Namespace) -> str | None:
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
    return os.environ.get("GRADIO_SERVE_PASSWORD") or None


def _warn_if_password_readable(path: str, data: dict) -> None:
    if (data.get("http") or {}).get("password") and os.stat(path).st_mode & 0o077:
        print(f"warning: {path} holds a password and other users can read it: chmod 600 {path}", file=sys.stderr)


def _app_flags(args: argparse.Namespace, data: dict) -> LaunchConfig:
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
    if args.replicas and not any((args.min_replicas, args.max_replicas, args.target_ongoing_requests)):
        app["autoscaling"] = None  # a fixed count asked for replaces autoscaling
    _cluster_and_http_flags(args, data)
    return LaunchConfig.from_dict(data)


def cmd_up(args) -> int:
    from serving.core.events import EventWriter

    if args.events:
        # Our own process group, so the launcher can end all of it; and fd 1 kept for
        # events only: whatever else prints (Ray, torch) goes to stderr.
        if os.getpgid(0) != os.getpid():
            os.setpgid(0, 0)
        events_fd = os.dup(1)
        os.dup2(2, 1)
        sys.stdout = os.fdopen(1, "w", buffering=1)
        writer = EventWriter(os.fdopen(events_fd, "w", buffering=1), as_json=True)
    else:
        writer = EventWriter(sys.stdout, as_json=False)
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        writer.emit("error", message=str(exc), hint="fix the configuration and start again")
        writer.emit("phase", phase="error", message=str(exc), url=None, pid=os.getpid(), pgid=os.getpgid(0))
        return 2
    if not args.events:
        writer = EventWriter(_output_to_log(), as_json=False)
    from serving.cluster.supervisor import Supervisor

    return Supervisor(config, writer, open_browser=args.open, watch_stdin=args.events).run()


def cmd_apply(args) -> int:
    from serving.core import apply_request
    from serving.core.process_group import pid_alive
    from serving.core.records import live_record

    record = live_record()
    if not record:
        print("Nothing is running; start it with `gradio-serve up` (it takes the same flags).", file=sys.stderr)
        return 3
    config = config_from_args(args, base=record.config)
    restart = apply_request.restart_needed(record.config, config.model_dump(mode="json"))
    if restart:
        print(f"error: changing {' and '.join(restart)} settings needs a restart: "
              "`gradio-serve down`, then `gradio-serve up` with the new settings", file=sys.stderr)
        return 2
    what = config.app.target if config.app else ", ".join(s.model for s in config.models)
    print(f"Applying {what} to the app at {record.url}…")
    start = time.monotonic()
    request_id = apply_request.send(record.pid, config.model_dump(mode="json"))
    answer = apply_request.wait(request_id, lambda: pid_alive(record.pid), timeout_s=args.timeout)
    if answer is None:
        print("error: no answer from the app (it stopped, or the change took too long); "
              "see `gradio-serve status` and the log", file=sys.stderr)
        return 1
    if not answer.ok:
        print(f"error: {answer.message}" + (f"\n  {answer.hint}" if answer.hint else ""), file=sys.stderr)
        return 2
    print(f"Done in {time.monotonic() - start:.1f} s: {record.url}")
    return 0


def cmd_status(args) -> int:
    from serving.core.records import live_record, read_status_record

    record = live_record()
    if not record:
        if args.json:
            print(json.dumps({"running": False}))
        else:
            print("Nothing is running. Start it with `gradio-serve up` or the launcher.")
        return 3
    status = read_status_record()
    if args.json:
        # The two records as written, merged (status.json's keys win), as before the models.
        print(json.dumps({"running": True, **record.as_json(), **(paths.read_json(paths.status_record()) or {})},
                         indent=2))
        return 0
    phase = status.phase.value if status and status.phase else "starting"
    print(f"{phase}: {record.url}  (supervisor pid {record.pid}, "
          f"app {status.app_status if status else 'NOT_STARTED'})")
    rows = [("DEPLOYMENT", "STATUS", "REPLICAS", "MESSAGE")]
    for d in status.deployments if status else []:
        rows.append((d.name, d.status, f"{d.replicas_running}/{d.replicas_target}", d.message[:60]))
    widths = [max(len(str(r[i])) for r in rows) for i in range(3)]
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[3])  # MESSAGE unpadded
    return 0


def cmd_down(args) -> int:
    from serving.core.process_group import pid_alive, stop_group
    from serving.core.records import live_record

    record = live_record()
    if not record:
        print("Nothing is running.")
        return 0
    pid = record.pid
    print(f"Stopping the app at {record.url} (pid {pid})…")
    # SIGTERM to the supervisor alone: it ends Serve, the cluster and its group itself. Killing is
    # left for a group it leads with a cluster of its own (on someone else's cluster, only the app goes).
    owns_group = record.owns_cluster and record.pgid == pid
    if stop_group(pid if owns_group else None, pid, grace_s=90, term_pid_only=True, kill=owns_group,
                  done=lambda: live_record() is None or not pid_alive(pid), poll_s=0.5):
        print("Stopped.")
        return 0
    if owns_group:
        print("It did not stop in 90 s; killed its processes.")
        return 1
    print("It did not stop in 90 s.")
    return 1


def cmd_models(args) -> int:
    from serving.core.catalog import list_models

    entries = list_models()
    if args.json:
        print(json.dumps([e.summary() for e in entries], indent=2))
        return 0
    rows = [("NAME", "KIND", "TASKS", "PARAMS", "MEMORY/REPLICA", "OFFLINE")]
    for e in entries:
        rows.append((e.name, e.kind, ",".join(e.tasks), f"{e.params_m:g}M" if e.params_m else "?",
                     f"~{e.memory_mb} MB", "yes" if e.available_offline else "no (needs download)"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 0


def cmd_export(args) -> int:
    from serving.cluster.export import export_text

    text = export_text(config_from_args(args), kuberay=args.kuberay)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        try:
            with open(args.output, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            raise ConfigError(f"cannot write {args.output}: {exc.strerror}") from None
        print(f"wrote {args.output}; deploy it with `serve deploy {args.output}`", file=sys.stderr)
    return 0


def _output_to_log():
    """In a terminal, only our own lines: Ray's (it prints its workers' and its own lines to stdout and
    stderr, as at every stop), the replicas' and any traceback go to the log. Returns the terminal."""
    log = paths.supervisor_log()
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"Logs: {log}", flush=True)
    terminal = os.fdopen(os.dup(1), "w", buffering=1)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 2)
    os.dup2(fd, 1)
    os.close(fd)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    return terminal


def _log_traceback() -> str:
    import traceback

    log = paths.supervisor_log()
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"--- gradio-serve {' '.join(sys.argv[1:])} failed at {time.ctime()}\n{traceback.format_exc()}")
    except OSError:
        return "(the log could not be written)"
    return str(log)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = {"up": cmd_up, "apply": cmd_apply, "status": cmd_status, "down": cmd_down, "models": cmd_models, "export": cmd_export}
    from serving.core.target import AppLoadError

    try:
        return handler[args.command](args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except AppLoadError as exc:
        print(f"error: {exc}" + (f"\n  hint: {exc.hint}" if exc.hint else ""), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - no traceback for the user: it goes to the log
        print(f"error: unexpected failure: {type(exc).__name__}: {exc}\n  details in {_log_traceback()}",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
