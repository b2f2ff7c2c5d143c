"""Reload on save, its parts without Ray: the flag, the saved files written into a replica's copy of
the folder, the app's modules forgotten before the new import, the warm check child's verdicts, and
the launcher's box."""

from __future__ import annotations

import os
import sys
import time

import pytest

from serving.cluster import reloader
from serving.cluster.reloader import WarmCheck, _saved
from serving.core.config import AppSpec, ConfigError
from serving.core.flags import ConfigOverrides
from serving.replica.app_swap import forget_modules, write_files

GOOD = "import gradio as gr\n\nwith gr.Blocks() as demo:\n    gr.Textbox()\n"


def test_reload_flag_goes_with_an_app(tmp_path):
    app = tmp_path / "demo.py"
    app.write_text(GOOD)
    assert ConfigOverrides(app=str(app), reload=True).over(from_environment=False).app.reload
    assert not ConfigOverrides(app=str(app)).over(from_environment=False).app.reload
    with pytest.raises(ConfigError, match="--reload"):
        ConfigOverrides(reload=True).over(from_environment=False)


def test_saved_files_are_written_inside_the_folder_only(tmp_path):
    write_files(tmp_path, {"demo.py": "v = 1\n", "pkg/helper.py": "h = 2\n"})
    assert (tmp_path / "demo.py").read_text() == "v = 1\n"
    assert (tmp_path / "pkg" / "helper.py").read_text() == "h = 2\n"
    assert not list(tmp_path.rglob("*.tmp"))
    with pytest.raises(ValueError, match="outside"):
        write_files(tmp_path / "pkg", {"../../evil.py": "x"})
    assert _saved(tmp_path, [tmp_path / "demo.py", tmp_path / "gone.py", tmp_path / "notes.txt"]) == {
        "demo.py": "v = 1\n"}


def test_the_apps_modules_are_forgotten_not_installed_ones(tmp_path, monkeypatch):
    (tmp_path / "mine_helper.py").write_text("X = 1\n")
    installed = tmp_path / ".venv" / "lib" / "site-packages"
    installed.mkdir(parents=True)
    (installed / "their_pkg.py").write_text("Y = 1\n")
    monkeypatch.syspath_prepend(str(installed))
    monkeypatch.syspath_prepend(str(tmp_path))
    import mine_helper  # noqa: F401
    import their_pkg  # noqa: F401

    try:
        assert forget_modules(tmp_path) == ["mine_helper"]
        assert "their_pkg" in sys.modules
    finally:
        sys.modules.pop("mine_helper", None)
        sys.modules.pop("their_pkg", None)


def test_the_warm_check_says_good_or_where_it_breaks(tmp_path):
    app = tmp_path / "demo.py"
    app.write_text(GOOD)
    check = WarmCheck(AppSpec(target=str(app)), login_given=False)
    try:
        verdict = check.check()
        assert verdict.ok and verdict.name == "demo", verdict
        app.write_text(GOOD.replace("with gr.Blocks() as demo:", "with gr.Blocks() as demo"))
        check.warm_up()
        started = time.monotonic()
        verdict = check.check()
        assert not verdict.ok
        assert f"{app}, line 3" in verdict.error, verdict.error
        assert time.monotonic() - started < 60
        warm = check._proc.pid
        app.write_text(GOOD.replace("demo", "fixed"))
        verdict = check.check()
        assert verdict.ok and verdict.name == "fixed", verdict  # the saved code, not a module left from before
        assert check._proc.pid == warm, "each check is a fork of the one warm process"
    finally:
        check.close()


def test_a_check_that_hangs_is_ended_and_the_next_one_answers(tmp_path, monkeypatch):
    monkeypatch.setattr(reloader, "APP_IMPORT_TIMEOUT_S", 20)
    app = tmp_path / "demo.py"
    app.write_text("import time\ntime.sleep(600)\n" + GOOD)
    check = WarmCheck(AppSpec(target=str(app)), login_given=False)
    try:
        hung = check._proc.pid
        verdict = check.check()
        assert not verdict.ok and "took more than 20 s" in verdict.error, verdict
        assert check._proc is None
        assert not _alive_in_session(hung), "the inspector or its hanging fork outlived the timeout"
        app.write_text(GOOD)
        check.warm_up()
        assert check.check().ok
    finally:
        check.close()


def test_the_launchers_box_carries_reload(qtbot):
    from launcher.app_picker import AppRow

    row = AppRow(AppSpec(target="/tmp/demo.py", reload=True))
    qtbot.addWidget(row)
    assert row.reload.isChecked() and row.app_dict()["reload"] is True
    row.reload.setChecked(False)
    assert row.app_dict()["reload"] is False
    row.set_editable(False)
    assert not row.reload.isEnabled()


def _alive_in_session(sid: int) -> list[int]:
    import psutil

    alive = []
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getsid(proc.pid) == sid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                alive.append(proc.pid)
        except (OSError, psutil.Error):
            continue
    return alive
