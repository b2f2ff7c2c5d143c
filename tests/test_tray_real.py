"""A real system tray: Xvfb with Debian's `trayer` (an XEmbed tray host), and the real launcher
(`launcher.app.main --minimized`) in its own process.

- The icon appears: Qt sees a system tray, and the tray host's window tree holds the launcher's
  icon window (found with xwininfo, an XEmbed client per xprop).
- It follows the state: the icon's pixels, grabbed from the X screen, show the stopped (grey),
  starting (amber arc), running (green badge) and failed (red badge) looks, and its tooltip says
  the state (and the URL while running).
- Its menu works when clicked with xdotool: a right-click on the icon opens it, and Start, Stop,
  Open in browser and Quit do what they say; Quit ends the launcher process and its supervisor.

Only the supervisor and the browser are fakes: a small script that speaks the supervisor's event
protocol (held in "starting" until the test lets it go, or failing on demand), and a URL opener
that writes to a file. Xvfb (its own display number, from -displayfd) and trayer are started
here and ended by PID. Needs Debian's xvfb, trayer, xdotool, x11-utils (scripts/system-deps.sh test).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fakes import path as fake_path
from supervisor_run import free_port, group_alive

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parent.parent
TOOLS = {"Xvfb": "xvfb", "trayer": "trayer", "xdotool": "xdotool", "xwininfo": "x11-utils", "xprop": "x11-utils"}

# The icons' telltale colours (resources/icons/tray-*.svg) and how close a pixel must be.
GREEN_BADGE, RED_BADGE, AMBER_ARC = (34, 197, 94), (225, 29, 46), (255, 176, 32)
BLUE_MARK, GREY_MARK = (27, 115, 232), (125, 134, 145)


def _near(pixel, colour, tolerance=45) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], colour, strict=False))  # RGB of RGB(A)


class Desktop:
    """Xvfb + trayer, both started here and ended by PID."""

    def __init__(self):
        self.procs: list[subprocess.Popen] = []
        self.display, self.env = "", dict(os.environ)

    def start(self, tmp: Path) -> None:
        read, write = os.pipe()
        xvfb = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x800x24", "-nolisten", "tcp", "-noreset"],
            pass_fds=[write], stdout=subprocess.DEVNULL, stderr=open(tmp / "xvfb.log", "w"),  # noqa: SIM115
        )
        self.procs.append(xvfb)
        os.close(write)
        number = b""
        deadline = time.monotonic() + 30
        while not number.endswith(b"\n") and time.monotonic() < deadline and xvfb.poll() is None:
            number += os.read(read, 16)
        os.close(read)
        assert number.strip().isdigit(), f"Xvfb did not start: {(tmp / 'xvfb.log').read_text()}"
        self.display = f":{number.decode().strip()}"
        self.env = {**os.environ, "DISPLAY": self.display}
        self.env.pop("WAYLAND_DISPLAY", None)
        trayer = subprocess.Popen(
            ["trayer", "--edge", "top", "--align", "right", "--widthtype", "request", "--height", "32",
             "--transparent", "false", "--tint", "0xffffff", "--SetDockType", "true"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=open(tmp / "trayer.log", "w"),  # noqa: SIM115
        )
        self.procs.append(trayer)
        self.wait(lambda: self.panel() is not None, 20, "trayer's panel window")

    def run(self, *argv: str) -> str:
        result = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=30, check=False)
        assert result.returncode == 0, f"{argv}: {result.stderr}"
        return result.stdout

    def wait(self, condition, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}")

    def tree(self, window: str = "-root") -> list[dict]:
        """Every window below `window` (xwininfo -tree): id, name, class, size, absolute position."""
        argv = ["xwininfo", "-tree"] + (["-root"] if window == "-root" else ["-id", window])
        rows = []
        for line in self.run(*argv).splitlines():
            m = re.match(r'\s*(0x[0-9a-f]+) (?:"(.*?)"|\(has no name\)): \((.*?)\)\s+(\d+)x(\d+)[+-]-?\d+[+-]-?\d+'
                         r'\s+\+?(-?\d+)\+?(-?\d+)', line)
            if m:
                wid, name, klass, w, h, x, y = m.groups()
                rows.append({"id": wid, "name": name, "class": klass, "w": int(w), "h": int(h), "x": int(x),
                             "y": int(y), "depth": len(line) - len(line.lstrip())})
        return rows

    def panel(self) -> dict | None:
        return next((w for w in self.tree() if w["name"] == "panel" and '"trayer"' in w["class"]), None)

    def tray_icons(self) -> list[dict]:
        """Windows embedded in trayer's panel that are not trayer's own (the icons)."""
        panel = self.panel()
        if panel is None:
            return []
        return [w for w in self.tree(panel["id"]) if w["class"] and "trayer" not in w["class"]
                and w["w"] >= 16 and w["h"] >= 16]

    def grab(self, box: dict):
        from PIL import ImageGrab

        screen = ImageGrab.grab(xdisplay=self.display)
        return screen.crop((box["x"], box["y"], box["x"] + box["w"], box["y"] + box["h"])).convert("RGB")

    def close(self) -> None:
        for proc in reversed(self.procs):  # trayer, then Xvfb: by PID
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)


class Launcher:
    """The real launcher in its own process, on the test's display."""

    def __init__(self, desktop: Desktop, tmp: Path, port: int):
        self.desktop, self.tmp = desktop, tmp
        self.report_file, self.opened, self.control = tmp / "report.jsonl", tmp / "opened.txt", tmp / "control"
        self.control.mkdir()
        # The launcher, unchanged, with the supervisor and the browser replaced (tests/fakes/tray_launcher.py).
        env = {**desktop.env, "QT_QPA_PLATFORM": "xcb", "PYTHONPATH": str(ROOT),
               "TRAY_REPORT": str(self.report_file), "TRAY_OPENED": str(self.opened),
               "TRAY_FAKE": fake_path("serving_tray"), "TRAY_CONTROL": str(self.control)}
        for name in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
            env[name] = str(tmp / name.lower())
        for name in ("GRADIO_SERVE_STATE_DIR", "GRADIO_SERVE_LOG_DIR", "GRADIO_SERVE_CACHE_DIR", "QT_SCALE_FACTOR"):
            env.pop(name, None)
        self.proc = subprocess.Popen(
            [sys.executable, fake_path("tray_launcher"), "--minimized", "--no-browser", "--port", str(port)],
            env=env, cwd=tmp, stdin=subprocess.DEVNULL, stdout=open(tmp / "launcher.out", "w"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )

    def reports(self, event: str | None = None) -> list[dict]:
        if not self.report_file.exists():
            return []
        rows = [json.loads(line) for line in self.report_file.read_text().splitlines() if line.strip()]
        return [r for r in rows if event is None or r["event"] == event]

    def output(self) -> str:
        out = self.tmp / "launcher.out"
        return out.read_text()[-4000:] if out.exists() else ""

    def wait_state(self, state: str, timeout: float = 15) -> dict:
        def reached():
            assert self.proc.poll() is None or state == "exit", f"the launcher exited:\n{self.output()}"
            states = self.reports("state")
            return states[-1] if states and states[-1]["state"] == state else None

        return self.desktop.wait(reached, timeout, f"tray state {state!r} (seen: "
                                 f"{[r['state'] for r in self.reports('state')]})")

    def fake_pgids(self) -> list[int]:
        path = self.control / "pgids"
        return [int(p) for p in path.read_text().split()] if path.exists() else []

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for pgid in self.fake_pgids():
            if group_alive(pgid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)


@pytest.fixture
def desktop(tmp_path):
    missing = [f"{tool} (Debian: {package})" for tool, package in TOOLS.items() if not shutil.which(tool)]
    assert not missing, f"missing: {missing}; install them with: bash scripts/system-deps.sh test"
    d = Desktop()
    try:
        d.start(tmp_path)
        yield d
    finally:
        d.close()


@pytest.fixture
def launcher(desktop, tmp_path):
    app = Launcher(desktop, tmp_path, free_port())
    yield app
    app.close()


def test_tray_icon_is_embedded_follows_the_state_and_its_menu_works(desktop, launcher):
    # -- the icon appears --------------------------------------------------------------------
    tray = desktop.wait(lambda: launcher.reports("tray"), 30, f"the launcher's tray\n{launcher.output()}")[0]
    assert tray == {"event": "tray", "available": True, "system_tray": True}, tray
    launcher.wait_state("stopped")
    icons = desktop.wait(desktop.tray_icons, 15, "an icon window inside trayer's panel")
    assert len(icons) == 1, icons
    icon = icons[0]
    xembed = desktop.run("xprop", "-id", icon["id"], "_XEMBED_INFO")
    assert "_XEMBED_INFO" in xembed and "not found" not in xembed, xembed  # an XEmbed client, embedded

    def looks(expected: str):
        """Wait until the icon's pixels on the X screen show the expected state."""
        def check():
            pixels = list(desktop.grab(icon).getdata())
            counts = {name: sum(_near(p, colour) for p in pixels) for name, colour in (
                ("green", GREEN_BADGE), ("red", RED_BADGE), ("amber", AMBER_ARC), ("blue", BLUE_MARK),
                ("grey", GREY_MARK))}
            ok = {
                "stopped": counts["grey"] >= 40 and counts["blue"] == 0 and counts["green"] == 0
                and counts["red"] == 0,
                "starting": counts["blue"] >= 40 and counts["amber"] >= 6 and counts["green"] == 0,
                "running": counts["blue"] >= 40 and counts["green"] >= 10 and counts["red"] == 0,
                "error": counts["blue"] >= 40 and counts["red"] >= 10 and counts["green"] == 0,
            }[expected]
            check.last = counts
            return ok

        check.last = {}
        try:
            desktop.wait(check, 10, f"the {expected} icon on screen")
        except AssertionError:
            desktop.grab(icon).save(launcher.tmp / f"icon-{expected}.png")
            raise AssertionError(f"the tray icon does not look {expected}: {check.last} "
                                 f"(saved {launcher.tmp / f'icon-{expected}.png'})") from None

    def menu_click(item: str) -> dict:
        """Right-click the icon, then click `item` in the menu that opens; the menu as it was."""
        before = len(launcher.reports("menu"))
        desktop.run("xdotool", "mousemove", str(icon["x"] + icon["w"] // 2), str(icon["y"] + icon["h"] // 2),
                    "click", "3")
        menu = desktop.wait(lambda: launcher.reports("menu")[before:], 10, "the tray menu")[-1]
        # The menu is a real window on the screen where Qt says it is.
        desktop.wait(lambda: any((w["x"], w["y"], w["w"], w["h"]) == (menu["x"], menu["y"], menu["w"], menu["h"])
                                 for w in desktop.tree()), 5, f"the menu window at {menu}")
        x, y, w, h, _enabled = menu["items"][item]
        desktop.run("xdotool", "mousemove", str(menu["x"] + x + w // 2), str(menu["y"] + y + h // 2), "click", "1")
        desktop.run("xdotool", "mousemove", "400", "600")  # away: no tooltip over the icon
        return menu

    looks("stopped")
    assert launcher.reports("state")[-1]["tooltip"] == "Gradio Serve Launcher: stopped"

    # -- Start (held in "starting" a moment), then running ----------------------------------
    (launcher.control / "mode").write_text("hold")
    menu = menu_click("Start")
    assert menu["items"]["Start"][4] and not menu["items"]["Stop"][4], "stopped: Start on, Stop off"
    assert set(menu["items"]) >= {"Start", "Stop", "Open in browser", "Show window", "Quit"}
    starting = launcher.wait_state("starting")
    assert starting["tooltip"] == "Gradio Serve Launcher: starting…"
    looks("starting")
    (launcher.control / "go").write_text("")
    running = launcher.wait_state("running")
    port = re.search(r":(\d+)/", running["tooltip"]).group(1)
    assert running["tooltip"] == f"Gradio Serve Launcher: running at http://127.0.0.1:{port}/"
    looks("running")
    digests = {r["state"]: r["icon"] for r in launcher.reports("state")}
    assert len({digests["stopped"], digests["starting"], digests["running"]}) == 3, digests

    # -- Open in browser ---------------------------------------------------------------------
    menu = menu_click("Open in browser")
    assert not menu["items"]["Start"][4] and menu["items"]["Stop"][4], "running: Start off, Stop on"
    desktop.wait(lambda: launcher.opened.exists() and launcher.opened.read_text().strip(), 10, "the browser")
    assert launcher.opened.read_text().splitlines() == [f"http://127.0.0.1:{port}/"]

    # -- Stop --------------------------------------------------------------------------------
    menu_click("Stop")
    launcher.wait_state("stopped")
    assert "stopping" in [r["state"] for r in launcher.reports("state")][-3:]
    looks("stopped")
    first = launcher.fake_pgids()[0]
    desktop.wait(lambda: not group_alive(first), 10, "the stopped supervisor's processes to end")

    # -- a failing start: the error look ----------------------------------------------------
    (launcher.control / "mode").write_text("fail")
    menu_click("Start")
    failed = launcher.wait_state("error")
    assert failed["tooltip"] == "Gradio Serve Launcher: failed to start"
    looks("error")

    # -- Start again, then Quit: the launcher and its supervisor end --------------------------
    (launcher.control / "mode").write_text("ok")
    menu_click("Start")
    launcher.wait_state("running")
    looks("running")
    menu_click("Quit")
    assert launcher.proc.wait(timeout=30) == 0, launcher.output()
    assert launcher.reports("exit") == [{"event": "exit", "rc": 0}]
    last = launcher.fake_pgids()[-1]
    desktop.wait(lambda: not group_alive(last), 10, "the supervisor to end with the launcher")
    desktop.wait(lambda: not desktop.tray_icons(), 10, "the icon to leave the tray")
