"""The launcher never imports ray, gradio, torch or transformers (docs/ARCHITECTURE.md: launcher/ is Qt only).

Checked in a fresh interpreter after the real window is built and its workers (catalog
scan, machine probe) have finished, so indirect imports are caught too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = ("ray", "gradio", "gradio_client", "torch", "transformers")

PROBE = r"""
import json, sys, time
from PySide6.QtWidgets import QApplication
app = QApplication(sys.argv[:1])
from launcher.main_thread_gc import MainThreadGC
collector = MainThreadGC(app)  # as launcher.app.main does
from launcher.window import MainWindow
from launcher.settings import Settings
from launcher.worker import pending_count
import launcher.app, launcher.tray, launcher.attached, launcher.single_instance  # every module the app uses
w = MainWindow(Settings(), open_browser=False)
w.show()
deadline = time.monotonic() + 30
while (pending_count() or not w.form.catalog_loaded or not w.form.machine_probed) and time.monotonic() < deadline:
    app.processEvents()
    time.sleep(0.01)
w.form.mode_fanout.setChecked(True)
app.processEvents()
print(json.dumps({"loaded": w.form.catalog_loaded, "models": sorted(sys.modules)}))
"""


def test_launcher_does_not_import_the_serving_stack(tmp_path):
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "PYTHONPATH": str(ROOT),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=120
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["loaded"], "the catalog scan finished"
    leaked = sorted({m.split(".")[0] for m in result["models"]} & set(FORBIDDEN))
    assert leaked == [], f"the launcher process imported {leaked}"


def test_launcher_sources_import_nothing_forbidden():
    # A static check as well, so a lazy import inside a rarely used function is caught.
    import ast

    offenders = []
    for path in sorted((ROOT / "launcher").glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in FORBIDDEN or name in (
                    "serving.cluster.supervisor",
                    "serving.cluster",
                    "serving.replica.apps",
                    "serving.replica.deployments",
                    "serving.replica.models",
                    "serving.replica.ui",
                    "serving.cli",
                ):
                    offenders.append(f"{path.name}:{node.lineno} imports {name}")
    assert offenders == []
