"""The launcher's session (launcher/session.py) on its own: one state through check, confirm, start,
restart and quit, with the form it reads and a controller that plays the supervisor (tests/fakes)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from fakes.controller import FollowingController, recording_factory
from supervisor_run import free_port

from launcher import machine
from launcher.config_form import ConfigForm
from launcher.model_catalog import ModelChoice
from launcher.serving_controller import ServingState
from launcher.session import Session, SessionState
from serving.core.config import LaunchConfig

CHOICE = ModelChoice(name="smollm2-135m-instruct", kind="instruct", params_m=135, memory_mb=900)

pytestmark = pytest.mark.usefixtures("launcher_env")  # see conftest.py


@pytest.fixture
def session(qtbot, monkeypatch):
    """A session on a 4-CPU machine whose form holds one fitting model on a free port."""
    monkeypatch.setattr("launcher.model_catalog.resolve", lambda ref, mode, field: CHOICE)
    form = ConfigForm(LaunchConfig.from_dict({"ingress_cpus": 0.5, "http": {"port": free_port()}}), [])
    qtbot.addWidget(form)
    form.set_machine(machine.MachineInfo(4, 16 << 30, 8 << 30, ()))
    form.set_choices([CHOICE])
    started: list[LaunchConfig] = []
    s = Session(form, recording_factory(started, FollowingController))
    s.started = started
    states: list[SessionState] = []
    s.changed.connect(lambda: states.append(s.state) if not states or states[-1] is not s.state else None)
    s.states = states
    return s


def test_a_start_is_checked_then_launched(session, qtbot):
    session.start()
    assert session.state is SessionState.checking and session.checking()
    qtbot.waitUntil(lambda: bool(session.started), timeout=5_000)
    assert session.state is SessionState.idle and session.serving_state() is ServingState.running
    assert session.states == [SessionState.checking, SessionState.idle]
    session.start()
    assert len(session.started) == 1, "start is idempotent while serving"


def test_what_may_not_fit_is_asked_first(session, qtbot):
    session.form.rows[0].cpus.setValue(4)  # 4.5 with the ingress, on a 4-CPU machine
    asked = []
    session.confirm_wanted.connect(lambda warnings, headline: asked.append(warnings))
    notices = []
    session.notice.connect(notices.append)
    session.start()
    qtbot.waitUntil(lambda: session.state is SessionState.confirming, timeout=5_000)
    assert "CPUs" in asked[0][0] and not session.editable()
    session.confirm(False)
    assert session.state is SessionState.idle and session.started == [] and notices[-1] == "Start cancelled."
    session.start()
    qtbot.waitUntil(lambda: session.state is SessionState.confirming, timeout=5_000)
    session.confirm(True)
    assert len(session.started) == 1 and session.serving_state() is ServingState.running


def test_the_browser_opens_once_a_start_runs(session, qtbot, monkeypatch):
    opened = []
    monkeypatch.setattr(session.browser, "open_when_ready", opened.append)
    session.open_browser = True
    session.start(interactive=False)
    qtbot.waitUntil(lambda: bool(opened), timeout=5_000)
    assert opened == [session.url()] and session.state is SessionState.idle


def test_restart_stops_then_starts_with_the_form(session, qtbot):
    session.start()
    qtbot.waitUntil(lambda: bool(session.started), timeout=5_000)
    port = free_port()
    session.form.port.setValue(port)
    assert session.pending().restart == ("http",)
    session.restart()
    qtbot.waitUntil(lambda: len(session.started) == 2, timeout=5_000)
    assert session.started[1].http.port == port and session.serving_state() is ServingState.running
    assert SessionState.restarting in session.states


def test_quit_stops_first_or_leaves_it_serving(session, qtbot):
    session.start()
    qtbot.waitUntil(lambda: bool(session.started), timeout=5_000)
    with qtbot.waitSignal(session.quit_requested, timeout=2_000) as quit_keep:
        session.quit(keep_serving=True)
    assert quit_keep.args == [True] and session.controller.detached and session.controller.stops == 0
    with qtbot.waitSignal(session.quit_requested, timeout=2_000) as quit_stop:
        session.quit(keep_serving=False)
    assert quit_stop.args == [False] and session.controller.stops == 1
    assert session.state is SessionState.quitting and session.serving_state() is ServingState.stopped

