"""`gradio-serve-launcher`: the entry point. Flags, single instance, window and tray, clean exit.

gradio-serve-launcher [--start] [--no-browser] [--port N] [--config FILE] [--minimized]
gradio-serve-launcher --install-desktop-entry | --uninstall-desktop-entry | --autostart on|off
gradio-serve-launcher --quit | --quit-keep-serving       (tells the running launcher)
gradio-serve-launcher --version

Light until the flags are read: `--version`, `--help` and the desktop flags answer without
importing Qt or pydantic.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import time

_T0 = time.perf_counter()  # for the "window ready" line: startup time is a feature here

DIST_NAME = "gradio-serve-launcher"


def version() -> str:
    """The installed distribution's version (importlib.metadata), without importing anything heavy."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version(DIST_NAME)
    except PackageNotFoundError:
        return "unknown (not installed)"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="gradio-serve-launcher",
        description="Desktop launcher for Gradio apps scaled with Ray Serve.",
    )
    p.add_argument("--start", action="store_true", help="start serving right away with the saved settings")
    p.add_argument("--no-browser", action="store_true", help="do not open the browser when the app is ready")
    p.add_argument("--port", type=int, metavar="N", help="HTTP port of the app")
    p.add_argument("--config", metavar="FILE", help="launch configuration (same JSON as `gradio-serve up --config`)")
    p.add_argument("--minimized", action="store_true", help="start in the tray, without showing the window")
    p.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    running = p.add_argument_group("tell the running launcher (then exit)")
    running.add_argument("--quit", action="store_true", help="stop serving and quit the running launcher")
    running.add_argument(
        "--quit-keep-serving",
        action="store_true",
        help="quit the running launcher but keep the app serving (the next launch finds it)",
    )
    desktop = p.add_argument_group("desktop integration (then exit)")
    desktop.add_argument("--install-desktop-entry", action="store_true", help="add the launcher to the app menu")
    desktop.add_argument("--uninstall-desktop-entry", action="store_true", help="remove it from the app menu")
    desktop.add_argument("--autostart", choices=("on", "off"), help="start the launcher at login (in the tray)")
    args = p.parse_args(argv)
    if args.port is not None and not 1 <= args.port <= 65535:
        p.error("--port must be between 1 and 65535")
    return args


def desktop_integration(args: argparse.Namespace) -> int:
    """The flags that change the desktop and exit; no window."""
    try:
        from launcher import desktop_entry
    except ImportError as exc:
        print(f"error: desktop integration is not available in this installation ({exc})", file=sys.stderr)
        return 2
    try:
        if args.install_desktop_entry:
            for path in desktop_entry.install_desktop_entry() or []:
                print(f"installed {path}")
        if args.uninstall_desktop_entry:
            removed = desktop_entry.uninstall_desktop_entry() or []
            for path in removed:
                print(f"removed {path}")
            if not removed:
                print("no desktop entry was installed")
        if args.autostart:
            desktop_entry.set_autostart(args.autostart == "on", args.start)
            print(
                f"start at login: {args.autostart}"
                + (" (and start serving)" if args.start and args.autostart == "on" else "")
            )
    except Exception as exc:  # noqa: BLE001 - a clear line, never a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def startup_config(args: argparse.Namespace, saved):
    """(the config to show, a problem to say or None): the saved settings, or --config's file, with --port
    on top, by serving/core/flags.py's one merge as `gradio-serve up` does it (a relative app target is
    relative to the file). A file that cannot be used is said, and the saved settings shown instead."""
    from launcher.app_inspector import load_config
    from serving.core.config import ConfigError
    from serving.core.flags import ConfigOverrides

    if args.config:
        try:
            return load_config(args.config, args.port), None
        except ConfigError as exc:
            problem = (f"{args.config} cannot be used:\n{exc}", "Fix the file; the saved settings are shown instead.")
            return ConfigOverrides(port=args.port).over(saved, from_environment=False), problem
    return ConfigOverrides(port=args.port).over(saved, from_environment=False), None


def _install_signal_handlers(app, on_signal) -> None:
    """SIGTERM/SIGINT reach Python only when it runs: a wakeup fd makes the Qt loop notice them."""
    from PySide6.QtCore import QSocketNotifier

    rsock, wsock = socket.socketpair()
    rsock.setblocking(False)
    wsock.setblocking(False)
    signal.set_wakeup_fd(wsock.fileno())
    notifier = QSocketNotifier(rsock.fileno(), QSocketNotifier.Type.Read, app)
    notifier.activated.connect(lambda *_: rsock.recv(64))
    app._signal_socks = (rsock, wsock, notifier)  # kept alive with the app
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: on_signal(signum))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.install_desktop_entry or args.uninstall_desktop_entry or args.autostart:
        return desktop_integration(args)

    from PySide6.QtCore import QThreadPool, QTimer
    from PySide6.QtWidgets import QApplication

    from launcher import settings as settings_mod
    from launcher.attached import find_running
    from launcher.errors import show_error
    from launcher.logs import launcher_logger, setup_file_logging
    from launcher.main_thread_gc import MainThreadGC
    from launcher.single_instance import SingleInstance, send_to_running
    from launcher.window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app._gc = MainThreadGC(app)  # before any worker thread can collect a Qt object
    app.setApplicationName("Gradio Serve Launcher")
    app.setOrganizationName("gradio-serve-launcher")
    app.setDesktopFileName("gradio-serve-launcher")
    app.setQuitOnLastWindowClosed(False)  # the tray keeps the app; quitting is explicit

    forwarded = sys.argv[1:] if argv is None else list(argv)
    if send_to_running(forwarded):
        if not (args.quit or args.quit_keep_serving):
            print("Gradio Serve Launcher is already running; brought its window forward.", file=sys.stderr)
        return 0
    if args.quit or args.quit_keep_serving:
        print("Gradio Serve Launcher is not running (to stop an app left serving: gradio-serve down).", file=sys.stderr)
        return 0
    single = SingleInstance()
    if not single.listen():
        launcher_logger().warning("single-instance socket unavailable: %s", single.server.errorString())

    setup_file_logging()
    log = launcher_logger()

    def excepthook(kind, exc, tb) -> None:
        # A bug in a slot must not end in a traceback on a terminal nobody sees.
        import traceback

        show_error(
            f"Something went wrong inside the launcher: {exc}",
            "The app keeps running; if this repeats, restart the launcher and report the log.",
            detail="".join(traceback.format_exception(kind, exc, tb)),
        )

    sys.excepthook = excepthook
    log.info("launcher started (pid %d)", os.getpid())
    settings, settings_message = settings_mod.load()

    settings.config, config_problem = startup_config(args, settings.config)

    window = MainWindow(settings, open_browser=False if args.no_browser else None)
    if settings_message:
        show_error(settings_message, "Your previous settings are in the moved file if you need them.")
    if config_problem:
        show_error(*config_problem)

    record = find_running()
    if record is not None:
        window.attach(record)
    elif args.start and not config_problem:
        QTimer.singleShot(0, lambda: window.start_serving(interactive=False))

    if args.minimized and window.tray.available():
        log.info("started in the tray")
    elif args.minimized:
        window.showMinimized()  # no tray here: a minimized window is the only way back
    else:
        window.show()
    QTimer.singleShot(0, lambda: log.info("window ready %.2f s after start", time.perf_counter() - _T0))

    def on_message(argv_from_other: list[str]) -> None:
        log.info("another launch asked for the window (%s)", " ".join(argv_from_other) or "no flags")
        if "--quit" in argv_from_other or "--quit-keep-serving" in argv_from_other:
            window.request_quit("--quit-keep-serving" in argv_from_other)
            return
        window.bring_forward()
        if "--start" in argv_from_other:
            window.start_serving()

    single.message_received.connect(on_message)

    keep = {"serving": False}

    def on_quit(keep_serving: bool) -> None:
        keep["serving"] = keep_serving
        app.quit()

    window.quit_requested.connect(on_quit)

    def on_signal(signum: int) -> None:
        log.info("signal %d: quitting", signum)
        if window.quitting:  # second signal: stop waiting
            if window.controller is not None:
                window.controller.shutdown_now(wait_s=4)
            app.quit()
        else:
            window.request_quit(False)

    _install_signal_handlers(app, on_signal)

    def last_resort() -> None:
        # Whatever path led here, an owned supervisor that was not detached must not outlive us.
        if window.controller is not None:
            window.controller.shutdown_now()

    app.aboutToQuit.connect(last_resort)
    rc = app.exec()
    # Python still running in Qt's pool threads (the machine probe, the model list: slow on a loaded
    # machine) while the interpreter finalizes can abort it; a SIGTERM early in a start once ended in
    # SIGABRT in CI. Let that work end first (it is short; bounded all the same).
    QThreadPool.globalInstance().waitForDone(3000)
    single.close()
    window.tray.hide()
    log.info("launcher exiting%s", " (the app keeps serving)" if keep["serving"] else "")
    if keep["serving"]:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        # QProcess's destructor kills its child; the detached supervisor must live on, so skip destructors.
        os._exit(rc)
    return rc


if __name__ == "__main__":
    sys.exit(main())
