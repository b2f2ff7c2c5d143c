#!/usr/bin/env python3
"""Screenshot of the real launcher window under Xvfb, for the README: docs/launcher.png.

    python scripts/screenshot_window.py [--out docs/launcher.png] [--mode fanout|summarize] [--serve]

Needs Debian's xvfb, libxcb-icccm4 and libxcb-keysyms1 (the other xcb libraries
are on the image already). Starts its own Xvfb on a free display, runs the
window with Qt's xcb platform and temporary settings (your own settings are not
touched), and grabs it once the model list has loaded. With --serve it really
starts serving (the window's configuration, with the real supervisor) and grabs
the window once the status says Running, then stops; without it the window is
shown idle.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start_xvfb(size: str) -> tuple[subprocess.Popen, str]:
    exe = shutil.which("Xvfb")
    if exe is None:
        sys.exit("Xvfb not found: apt-get install -y xvfb libxcb-icccm4 libxcb-keysyms1")
    read_fd, write_fd = os.pipe()
    # -displayfd: Xvfb picks a free display and writes its number once it accepts clients.
    proc = subprocess.Popen(
        [exe, "-displayfd", str(write_fd), "-screen", "0", f"{size}x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as fh:
        number = fh.readline().strip()
    if not number:
        proc.kill()
        sys.exit("Xvfb did not start")
    return proc, f":{number}"


def run_window(out: Path, mode: str, serve: bool, port: int, timeout: float) -> int:
    """Runs inside the Xvfb display (a child process, so Qt starts with the right DISPLAY)."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    sys.path.insert(0, str(ROOT))
    import logging

    from launcher.settings import Settings
    from launcher.window import MainWindow
    from launcher.worker import pending_count
    from serving.core.config import LaunchConfig

    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")  # the launcher's notes, on stderr
    app = QApplication(sys.argv[:1])
    app.setApplicationName("Gradio Serve Launcher")
    app.setDesktopFileName("gradio-serve-launcher")
    window = MainWindow(Settings(config=LaunchConfig.from_dict({"http": {"port": port}})))
    window.browser.opener = lambda url: True  # the picture needs the window, not a browser
    window.resize(900, 760)
    window.show()
    started = time.monotonic()
    state = {"mode_set": False, "serving": False, "done": False, "rc": 1}

    def grab() -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        window.grab().save(str(out))
        print(f"wrote {out}")
        state["rc"] = 0

    def tick() -> None:
        if time.monotonic() - started > timeout:
            print("timed out; grabbing the window as it is", file=sys.stderr)
            grab()
            finish()
            return
        if pending_count() or not window.form.catalog_loaded:
            return
        if not state["mode_set"]:
            state["mode_set"] = True
            if mode == "fanout":
                window.form.mode_fanout.setChecked(True)
            return
        if serve and not state["serving"]:
            state["serving"] = True
            window.start_serving(interactive=False)
            return
        if serve and window.state_text().startswith("Failed"):
            print("serving failed to start; see the log above", file=sys.stderr)
            finish()
            return
        if serve and not window.state_text().startswith("Running"):
            return
        if serve and not window.status_table.rows():
            return
        grab()
        finish()

    def finish() -> None:
        timer.stop()
        if window.controller is not None and window.controller.is_active():
            window.request_quit(False)  # stops serving, then quits
        else:
            app.quit()

    window.quit_requested.connect(lambda _keep: app.quit())
    timer = QTimer(interval=250)
    timer.timeout.connect(tick)
    QTimer.singleShot(600, timer.start)  # let the first paint and fonts settle
    app.exec()
    return state["rc"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "launcher.png")
    p.add_argument("--mode", choices=("fanout", "summarize"), default="fanout")
    p.add_argument("--serve", action="store_true", help="start serving for real and grab the running state")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--timeout", type=float, default=180.0)
    p.add_argument("--size", default="1280x960")
    p.add_argument("--_child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._child:
        return run_window(args.out.resolve(), args.mode, args.serve, args.port, args.timeout)

    xvfb, display = start_xvfb(args.size)
    with tempfile.TemporaryDirectory(prefix="launcher-shot-") as tmp:
        env = {
            **os.environ,
            "DISPLAY": display,
            "QT_QPA_PLATFORM": "xcb",
            # Settings and state apart from yours; the cache (converted weights) is shared, to stay fast.
            "XDG_CONFIG_HOME": f"{tmp}/config",
            "XDG_STATE_HOME": f"{tmp}/state",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        env.pop("WAYLAND_DISPLAY", None)
        try:
            child = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--_child",
                    "--out",
                    str(args.out),
                    "--mode",
                    args.mode,
                    "--port",
                    str(args.port),
                    "--timeout",
                    str(args.timeout),
                ]
                + (["--serve"] if args.serve else []),
                env=env,
                timeout=args.timeout + 120,
                check=False,
            )
            return child.returncode
        finally:
            xvfb.send_signal(signal.SIGTERM)
            try:
                xvfb.wait(timeout=5)
            except subprocess.TimeoutExpired:
                xvfb.kill()


if __name__ == "__main__":
    sys.exit(main())
