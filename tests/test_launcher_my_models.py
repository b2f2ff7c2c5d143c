"""My models in the launcher (launcher/my_models.py): the models in the Hugging Face cache with their size on
disk; one removed once the user confirms (its files gone, the picker follows); the model the running app
serves refused, with why. Offscreen Qt, the real window and catalog, a cache of its own (the tiny models)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import psutil
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMenu, QMessageBox
from questions import button, question

from launcher import machine
from launcher.settings import Settings
from launcher.window import MainWindow
from serving.core import paths
from serving.core.download_progress import human_bytes
from serving.core.model_cache import repo_folder, size_on_disk
from serving.core.protocol import SupervisorRecord

pytestmark = pytest.mark.usefixtures("launcher_env")  # see conftest.py
TINY = ["tiny-random/chat", "tiny-random/gpt2", "tiny-random/t5"]


@pytest.fixture
def cache(tiny_models, tmp_path, monkeypatch):
    """A Hugging Face cache of this test's own with the three tiny models (the shared one is never touched)."""
    from huggingface_hub import constants

    hub = tmp_path / "hub"
    shutil.copytree(tiny_models["hub_cache"], hub, symlinks=True)
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))
    return hub


@pytest.fixture
def window(qtbot, cache, monkeypatch):
    monkeypatch.setattr(machine, "probe", lambda: machine.MachineInfo(4, 16 << 30, 8 << 30, ()))
    w = MainWindow(Settings(), open_browser=False)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.form.catalog_loaded and w.form.machine_probed, timeout=15_000)
    return w


@pytest.fixture
def serving_record():
    """serving_record(model): a live process that looks like a supervisor, and its record naming `model`."""
    procs = []

    def write(model: str) -> SupervisorRecord:
        if not procs:
            procs.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "serving"]))
        pid = procs[0].pid
        record = SupervisorRecord(pid=pid, url="http://127.0.0.1:18977/", started=psutil.Process(pid).create_time(),
                                  config={"models": [{"model": model}]})
        paths.write_json_atomic(paths.supervisor_record(), record.as_json())
        return record

    yield write
    for proc in procs:
        proc.kill()
        proc.wait()


def open_my_models(qtbot, w):
    qtbot.mouseClick(w.form.slots_panel.my_models_button, Qt.MouseButton.LeftButton)
    dialog = w.form.slots_panel.my_models
    assert dialog is not None and dialog.isVisible()
    qtbot.waitUntil(lambda: dialog.loaded, timeout=15_000)
    return dialog


def click_remove(qtbot, dialog, name: str) -> QMessageBox:
    dialog.select(name)
    assert dialog.remove_button.isEnabled()
    qtbot.mouseClick(dialog.remove_button, Qt.MouseButton.LeftButton)
    box = question(dialog)
    assert box is not None, "a question or a refusal was expected"
    return box


def offered(w) -> list[str]:
    combo = w.form.rows[0].model
    return [combo.itemText(i) for i in range(combo.count())]


def test_my_models_shows_each_size_and_removes_one_once_confirmed(qtbot, window, cache):
    dialog = open_my_models(qtbot, window)
    assert dialog.names() == TINY
    sizes = {name: size_on_disk(name, cache) for name in TINY}
    assert all(sizes.values())
    assert {name: dialog.size_text(name) for name in TINY} == {n: human_bytes(s) for n, s in sizes.items()}
    assert human_bytes(sum(sizes.values())) in dialog.summary.text() and str(cache) in dialog.summary.text()
    assert "tiny-random/t5" in offered(window)
    folder = repo_folder("tiny-random/t5", cache)

    box = click_remove(qtbot, dialog, "tiny-random/t5")
    assert box.text() == "Remove tiny-random/t5 from this machine?"
    assert human_bytes(sizes["tiny-random/t5"]) in box.informativeText()
    assert box.defaultButton() is box.button(QMessageBox.StandardButton.Cancel)
    box.button(QMessageBox.StandardButton.Cancel).click()
    assert folder.is_dir(), "Cancel removes nothing"

    button(click_remove(qtbot, dialog, "tiny-random/t5"), "Remove").click()
    qtbot.waitUntil(lambda: dialog.names() == ["tiny-random/chat", "tiny-random/gpt2"], timeout=15_000)
    assert not folder.exists() and not (cache / ".locks" / folder.name).exists()
    assert f"Removed tiny-random/t5: {human_bytes(sizes['tiny-random/t5'])} freed." in dialog.summary.text()
    qtbot.waitUntil(lambda: "tiny-random/t5" not in offered(window), timeout=5_000)  # the picker follows
    assert repo_folder("tiny-random/chat", cache).is_dir() and repo_folder("tiny-random/gpt2", cache).is_dir()


def test_the_model_the_running_app_serves_is_refused_with_why(qtbot, window, cache, serving_record):
    serving_record("tiny-random/gpt2")
    dialog = open_my_models(qtbot, window)
    dialog.select("tiny-random/gpt2")  # asked through the row's context menu this time
    dialog.list.customContextMenuRequested.emit(dialog.list.visualItemRect(dialog.list.currentItem()).center())
    menu = dialog.findChildren(QMenu)[-1]
    assert [a.text() for a in menu.actions()] == ["Remove tiny-random/gpt2…"]
    menu.actions()[0].trigger()
    box = question(dialog)
    assert box.text() == "tiny-random/gpt2 cannot be removed now."
    assert "being served now (at http://127.0.0.1:18977/)" in box.informativeText()
    assert "gradio-serve down" in box.informativeText()
    assert [b.text() for b in box.buttons()] == ["OK"], "refused at once: nothing to confirm"
    box.button(QMessageBox.StandardButton.Ok).click()
    assert repo_folder("tiny-random/gpt2", cache).is_dir() and "tiny-random/gpt2" in dialog.names()

    # The app starts serving another one while the user is asked: the removal itself refuses it.
    box = click_remove(qtbot, dialog, "tiny-random/chat")
    serving_record("tiny-random/chat")
    button(box, "Remove").click()
    qtbot.waitUntil(lambda: (q := question(dialog)) is not None and "cannot be removed" in q.text(), timeout=15_000)
    assert "being served now" in question(dialog).informativeText()
    assert repo_folder("tiny-random/chat", cache).is_dir()
