"""A Hub model's download in the launcher: the supervisor's `download` events (serving/core/protocol.py)
become the controller's download_progress signal, and the start's bar shows the download itself."""

from __future__ import annotations

import pytest

from launcher.start_progress import StartProgress
from launcher.supervisor_process import SupervisorProcess
from serving.core.protocol import DownloadEvent

pytestmark = pytest.mark.usefixtures("launcher_env")  # see conftest.py


def test_download_events_reach_the_start_bar(qtbot):
    process = SupervisorProcess()
    progress = StartProgress()
    qtbot.addWidget(progress)
    process.download_progress.connect(progress.follow_download)
    process.phase_changed.connect(progress.follow_phase)
    progress.begin(app=False, names=["org/gpt2"])
    with qtbot.waitSignal(process.download_progress) as said:
        process.handle_event({"event": "download", "time": 1.0, "model": "org/gpt2", "done_bytes": 450_000,
                              "total_bytes": 1_000_000, "bytes_per_s": 250_000.0, "eta_s": 2.2})
    assert isinstance(said.args[0], DownloadEvent)
    assert progress.words_text() == "Downloading org/gpt2: 45% · 450.0 kB of 1.0 MB · 250.0 kB/s · 2 s left"
    assert progress.value() == 45
    process.handle_event({"event": "phase", "time": 2.0, "phase": "error", "message": "no space"})
    assert progress.words_text().startswith("Failed while downloading org/gpt2")


def test_the_picker_says_a_cached_models_size_on_disk():
    from launcher.model_catalog import _from_entry
    from serving.core.catalog import CatalogEntry

    entry = CatalogEntry(name="org/gpt2", kind="causal", params_m=0.2, source="cache", available_offline=True,
                         hub_id="org/gpt2", size_on_disk=927_700)
    assert _from_entry(entry).details().endswith("offline · 927.7 kB on disk")
