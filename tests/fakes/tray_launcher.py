"""The real launcher (launcher.app.main) with its supervisor and browser replaced, for test_tray_real.py.

Its supervisor is tests/fakes/serving_tray.py ($TRAY_FAKE); pages "opened" are appended to $TRAY_OPENED;
it reports what its tray shows (state, tooltip, icon) and where its menu's items are, as JSON lines in
$TRAY_REPORT.
"""

import hashlib
import json
import os
import sys


def report(**kw):
    with open(os.environ["TRAY_REPORT"], "a") as f:
        f.write(json.dumps(kw) + "\n")


from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QSystemTrayIcon

import launcher.session as session_mod
import launcher.tray as tray_mod
from launcher.supervisor_process import SupervisorProcess


class FakeSupervisor(SupervisorProcess):
    def __init__(self, parent=None):
        super().__init__(parent, command=[sys.executable, os.environ["TRAY_FAKE"]])


def fake_open(url):
    with open(os.environ["TRAY_OPENED"], "a") as f:
        f.write(url + "\n")
    return True


session_mod.SupervisorProcess = FakeSupervisor
session_mod.open_url = fake_open


def icon_digest(icon):
    image = icon.pixmap(22, 22).toImage()
    return hashlib.md5(bytes(image.constBits())).hexdigest()


made = tray_mod.Tray.__init__


def init(self, actions, parent=None):
    made(self, actions, parent)
    report(event="tray", available=self.available(), system_tray=QSystemTrayIcon.isSystemTrayAvailable())

    def where():
        g = self.menu.geometry()
        items = {}
        for action in self.menu.actions():
            if not action.isSeparator():
                r = self.menu.actionGeometry(action)
                items[action.text()] = [r.x(), r.y(), r.width(), r.height(), action.isEnabled()]
        report(event="menu", x=g.x(), y=g.y(), w=g.width(), h=g.height(), items=items)

    self.menu.aboutToShow.connect(lambda: QTimer.singleShot(150, where))


tray_mod.Tray.__init__ = init

set_state = tray_mod.Tray.set_state


def follow(self, state, url=None, changing=None):
    set_state(self, state, url, changing)
    icon = self.icon
    report(
        event="state",
        state=state,
        tooltip=icon.toolTip() if icon else None,
        icon=icon_digest(icon.icon()) if icon else None,
    )


tray_mod.Tray.set_state = follow

from launcher.app import main

rc = main(sys.argv[1:])
report(event="exit", rc=rc)
sys.exit(rc)
