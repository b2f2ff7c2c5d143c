"""`gradio-serve`: the headless face of the launcher.

    gradio-serve up [--mode fanout] [--model REF ...] [--config FILE] [--port N] [--open] [--events]
    gradio-serve up --app path/to/demo.py[:NAME] [--replicas N] [--num-cpus N]   (your own Gradio app)
    gradio-serve apply [--model REF ...] [--replicas N ...]     (change the running app in place)
    gradio-serve status [--json | --watch]
    gradio-serve down
    gradio-serve models [--json] [--remove NAME]
    gradio-serve export -o serve-config.yaml
    gradio-serve --version
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from serving.core import paths
from serving.core.config import ConfigError
from serving.core.flags import add_config_flags, config_from_args
from serving.core.preflight import StartError

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
    add_config_flags(up)
    up.add_argument("--open", action="store_true", help="open the browser when the app is ready")
    up.add_argument("--reload", action="store_true", help="your app: reload it in every replica when a .py file "
                    "in its folder is saved (a broken save is reported; the running version goes on)")
    up.add_argument("--events", action="store_true", help=argparse.SUPPRESS)  # the launcher's protocol

    ap = sub.add_parser("apply", help="change the running app in place (models, replicas, settings); "
                                      "the cluster stays up and unchanged replicas keep running")
    add_config_flags(ap)
    ap.add_argument("--timeout", type=float, default=900, help="seconds to wait for the change (default 900)")

    st = sub.add_parser("status", help="show what is running")
    st.add_argument("--json", action="store_true", help="one JSON object (record, phase, deployments, metrics)")
    st.add_argument("--watch", action="store_true", help="refresh in place every 2 s, as top (Ctrl-C ends it)")
    sub.add_parser("down", help="stop the running app")
    models = sub.add_parser("models", help="list the models that can be served")
    models.add_argument("--json", action="store_true", help="a JSON list")
    models.add_argument("--remove", metavar="NAME", help="delete a model from the Hugging Face cache (frees its SIZE)")

    ex = sub.add_parser("export", help="write a Serve config file for `serve deploy`")
    add_config_flags(ex)
    ex.add_argument("-o", "--output", default="-", help="file to write (default: stdout)")
    ex.add_argument("--kuberay", action="store_true", help="wrap it in a KubeRay RayService manifest")
    from serving.cluster.join_node import add_commands

    add_commands(sub)  # join, leave
    return p


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
    from serving.core.download_progress import DownloadLines
    from serving.core.process_group import pid_alive
    from serving.core.protocol import Phase
    from serving.core.records import live_record, read_status_record

    record = live_record()
    if not record:
        print("Nothing is running; start it with `gradio-serve up` (it takes the same flags).", file=sys.stderr)
        return 3
    status = read_status_record()
    if status and status.phase is Phase.downloading:
        print("error: the app is still downloading its model; apply the change once it runs "
              "(`gradio-serve status` shows how far it has got)", file=sys.stderr)
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
    lines, tty = DownloadLines(), sys.stdout.isatty()

    def show_download() -> None:  # a Hub model the change needs is downloaded first
        status = read_status_record()
        if status and status.download and (said := lines.line(status.download.as_json(), tty)):
            print(said[0], end="\n" if said[1] else "", flush=True)

    answer = apply_request.wait(request_id, lambda: pid_alive(record.pid), timeout_s=args.timeout,
                                meanwhile=show_download)
    print(lines.close(), end="")
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
    from serving.core.download_progress import describe_event
    from serving.core.machines_text import machines_lines
    from serving.core.metrics_table import metrics_lines, read_metrics, watch
    from serving.core.protocol import Phase
    from serving.core.records import live_record, read_status_record

    if getattr(args, "watch", False) and not args.json:
        return watch(lambda: cmd_status(argparse.Namespace(json=False, watch=False)))
    record = live_record()
    if not record:
        if args.json:
            print(json.dumps({"running": False}))
        else:
            print("Nothing is running. Start it with `gradio-serve up` or the launcher.")
        return 3
    status = read_status_record()
    if status and status.phase is Phase.downloading and not args.json:
        print(f"downloading: {describe_event(status.download.as_json() if status.download else {})}\n"
              f"  (supervisor pid {record.pid}; then serves at {record.url}; `gradio-serve down` stops it, "
              "the next start continues the download)")
        return 0
    if args.json:
        # The two records as written, merged (status.json's keys win), as before the models.
        print(json.dumps({"running": True, **record.as_json(), **(paths.read_json(paths.status_record()) or {}),
                          "metrics": paths.read_json(paths.metrics_record())}, indent=2))
        return 0
    phase = status.phase.value if status and status.phase else "starting"
    print(f"{phase}: {record.url}  (supervisor pid {record.pid}, "
          f"app {status.app_status if status else 'NOT_STARTED'})")
    if status and status.download:  # for a change being applied; the running app goes on meanwhile
        print(f"downloading for the change being applied: {describe_event(status.download.as_json())}")
    rows = [("DEPLOYMENT", "STATUS", "REPLICAS", "MESSAGE")]
    for d in status.deployments if status else []:
        rows.append((d.name, d.status, f"{d.replicas_running}/{d.replicas_target}", d.message[:60]))
    widths = [max(len(str(r[i])) for r in rows) for i in range(3)]
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[3])  # MESSAGE unpadded
    if machines := machines_lines(status.machines if status else [], status.deployments if status else [],
                                  record.join_command, record.token_file):
        print("\nMACHINES\n  " + "\n  ".join(machines))
    print("\n" + "\n".join(metrics_lines(read_metrics())))
    return 0


def cmd_down(args) -> int:
    from serving.core.process_group import pid_alive, stop_group
    from serving.core.protocol import Phase
    from serving.core.records import live_record, read_status_record

    record = live_record()
    if not record:
        print("Nothing is running.")
        return 0
    pid = record.pid
    status = read_status_record()
    if status and status.phase is Phase.downloading:
        print(f"Stopping the start at {record.url} (pid {pid}), which is downloading "
              f"{status.download.model if status.download else 'a model'}; the next start continues it…")
    else:
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
    from serving.core.download_progress import human_bytes

    if args.remove:
        from serving.core.model_cache import remove

        gone = remove(args.remove)
        print(f"Removed {gone.name} ({human_bytes(gone.freed_bytes)} freed): {gone.folder}")
        return 0
    entries = list_models()
    if args.json:
        print(json.dumps([e.summary() for e in entries], indent=2))
        return 0
    rows = [("NAME", "KIND", "TASKS", "PARAMS", "MEMORY/REPLICA", "SIZE", "OFFLINE")]
    for e in entries:
        rows.append((e.name, e.kind, ",".join(e.tasks) or "?", f"{e.params_m:g}M" if e.params_m else "?",
                     f"~{e.memory_mb} MB", human_bytes(e.size_on_disk) if e.size_on_disk else "-",
                     "yes" if e.available_offline else "no (needs download)"))
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
    from serving.cluster.join_node import cmd_join, cmd_leave

    handler = {"up": cmd_up, "apply": cmd_apply, "status": cmd_status, "down": cmd_down, "models": cmd_models,
               "export": cmd_export, "join": cmd_join, "leave": cmd_leave}
    from serving.core.target import AppLoadError

    try:
        return handler[args.command](args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except StartError as exc:
        print(f"error: {exc}" + (f"\n  hint: {exc.hint}" if exc.hint else ""), file=sys.stderr)
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
