"""Launcher settings: platformdirs + XDG_CONFIG_HOME, only non-default values, corrupt files set aside."""

from __future__ import annotations

import json
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

from launcher import settings as s
from serving.core.config import LaunchConfig

pytestmark = pytest.mark.usefixtures("launcher_env")  # see conftest.py


def test_path_respects_xdg_config_home(tmp_path):
    assert s.settings_path() == tmp_path / "xdg_config_home" / "gradio-serve-launcher" / "launcher.json"


def test_defaults_write_nothing_but_an_empty_object():
    assert s.to_dict(s.Settings()) == {}
    path = s.save(s.Settings())
    assert json.loads(path.read_text()) == {}
    loaded, message = s.load()
    assert message is None and loaded == s.Settings()


def test_round_trip_stores_only_what_differs():
    config = LaunchConfig.from_dict(
        {"mode": "fanout", "models": [{}, {"model": "gpt2", "num_cpus": 0.5}], "http": {"port": 8123}}
    )
    settings = s.Settings(config=config, open_browser=False, geometry="AAAA")
    s.save(settings)
    data = json.loads(s.settings_path().read_text())
    assert data == {
        "config": {"mode": "fanout", "models": [{}, {"model": "gpt2", "num_cpus": 0.5}], "http": {"port": 8123}},
        "open_browser": False,
        "geometry": "AAAA",
    }
    loaded, message = s.load()
    assert message is None and loaded == settings


def test_missing_file_gives_defaults():
    assert s.load() == (s.Settings(), None)


@pytest.mark.parametrize(
    "content, reason",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "does not hold a JSON object"),
        ('{"open_browser": "yes"}', "'open_browser' has the wrong type"),
        ('{"config": {"models": [{"num_cpus": -1}]}}', "models.0.num_cpus"),
        ('{"config": {"mode": "fanout"}}', "fanout mode needs at least two models"),
    ],
)
def test_corrupt_file_is_moved_aside_with_a_message(content, reason):
    path = s.settings_path()
    path.parent.mkdir(parents=True)
    path.write_text(content)
    loaded, message = s.load()
    assert loaded == s.Settings()
    assert message is not None and reason in message and "moved to" in message and "default settings" in message
    assert not path.exists()
    aside = list(path.parent.glob("launcher.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text() == content


def test_unknown_keys_from_a_newer_release_are_ignored():
    path = s.settings_path()
    path.parent.mkdir(parents=True)
    path.write_text('{"open_browser": false, "something_new": 1}')
    loaded, message = s.load()
    assert message is None and loaded.open_browser is False


def test_window_saves_changes_and_the_next_window_restores_them(qtbot):
    from launcher.window import MainWindow

    w = MainWindow(s.Settings(), open_browser=None)
    qtbot.addWidget(w)
    w.form.mode_fanout.setChecked(True)
    w.form.port.setValue(8321)
    w.options.open_browser_box.setChecked(False)
    qtbot.waitUntil(lambda: s.settings_path().exists() and "8321" in s.settings_path().read_text(), timeout=3_000)
    w.save_settings()
    loaded, message = s.load()
    assert message is None
    assert loaded.config.mode.value == "fanout" and loaded.config.http.port == 8321 and loaded.open_browser is False
    w2 = MainWindow(loaded, open_browser=None)
    qtbot.addWidget(w2)
    assert w2.form.mode_fanout.isChecked() and w2.form.port.value() == 8321 and len(w2.form.rows) == 2
    assert not w2.options.open_browser_box.isChecked()


def test_no_browser_flag_does_not_overwrite_the_saved_choice(qtbot):
    from launcher.window import MainWindow

    w = MainWindow(s.Settings(open_browser=True), open_browser=False)
    qtbot.addWidget(w)
    assert not w.options.open_browser_box.isChecked()
    w.save_settings()
    assert s.load()[0].open_browser is True


def test_corrupt_settings_reach_the_user_when_the_app_starts(tmp_path):
    # The real entry point, in a subprocess: it shows the message and keeps running with defaults.
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    path = s.settings_path()
    path.parent.mkdir(parents=True)
    path.write_text("{broken")
    code = (
        "import sys\n"
        "from PySide6.QtCore import QTimer\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication(sys.argv[:1])\n"
        "def check():\n"
        "    from launcher import errors\n"
        "    box = errors.last_dialog\n"
        "    print('DIALOG:', box.text() if box else None, flush=True)\n"
        "    app.quit()\n"
        "QTimer.singleShot(300, check)\n"
        "from launcher.app import main\n"
        "sys.exit(main(['--no-browser']))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "DIALOG: The settings file" in out.stdout and "could not be used" in out.stdout
    assert list(path.parent.glob("launcher.json.corrupt-*"))
