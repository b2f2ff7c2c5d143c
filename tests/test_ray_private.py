"""serving/ray_private/ holds every private Ray API and says so, without crashing, on another Ray."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def ray_private():
    from serving import ray_private

    ray_private.version_mismatch.cache_clear()
    yield ray_private
    ray_private.version_mismatch.cache_clear()


def test_the_ray_it_was_written_for_passes_quietly(ray_private):
    import ray

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        if tuple(int(p) for p in ray.__version__.split(".")[:2]) == ray_private.WRITTEN_FOR:
            assert ray_private.version_mismatch() is None


@pytest.mark.parametrize("version", ["2.61.0", "3.0.0", "2.59.1", "nightly"])
def test_another_ray_gets_a_clear_warning_not_a_crash(ray_private, monkeypatch, version):
    import ray

    monkeypatch.setattr(ray, "__version__", version)
    with pytest.warns(RuntimeWarning, match=r"serving/ray_private/ was written for Ray 2\.60"):
        message = ray_private.version_mismatch()
    assert message and version in message and "ray[serve]==2.60.0" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ray_private.version_mismatch() == message  # once per process


def test_no_private_ray_api_outside_ray_private():
    # In code, not prose: private modules imported, Ray's private attributes read, private keywords passed.
    import ast

    private_attributes = {"_deployment_id", "_get_status", "_get_global_client", "ENABLE_RAY_CLUSTER", "http_config",
                          "WORKER_PROCESS_SETUP_HOOK_ENV_VAR"}
    private_keywords = {"_internal", "_node_ip_address", "_system_config", "_blocking"}
    offenders = []
    for path in sorted((ROOT / "serving").rglob("*.py")):
        if "ray_private" in path.relative_to(ROOT / "serving").parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            found = None
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "ray":
                if "._" in node.module or any(a.name.startswith("_") for a in node.names):
                    found = node.module
            elif isinstance(node, ast.Import):
                found = next((a.name for a in node.names if a.name.startswith("ray.") and "._" in a.name), None)
            elif isinstance(node, ast.Attribute) and node.attr in private_attributes:
                found = node.attr
            elif isinstance(node, ast.keyword) and node.arg in private_keywords:
                found = node.arg
            if found:
                offenders.append(f"{path.name}:{getattr(node, 'lineno', '?')}: {found}")
    assert offenders == []


def test_serve_imports_without_pandas_and_pandas_still_imports_after():
    # A fresh interpreter: Serve's utils takes pd=None, nothing else of Serve pulls pandas in, and code
    # that wants pandas (Gradio, a user's app) still gets it.
    code = (
        "import sys; from serving.ray_private import import_serve_without_pandas\n"
        "import_serve_without_pandas()\n"
        "import ray.serve._private.utils as u, ray.serve._private.controller, ray.serve._private.proxy, "
        "ray.serve._private.replica\n"
        "assert u.pd is None, u.pd\n"
        "assert 'pandas' not in sys.modules\n"
        "import pandas; print('pandas', pandas.__version__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("pandas ")


def test_without_the_helper_serve_imports_pandas():
    # The control: the saving is real only if Serve imports pandas by itself.
    code = "import sys, ray.serve._private.utils as u; print(u.pd is not None and 'pandas' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.stdout.strip() == "True", done.stderr[-2000:]


def test_the_log_monitor_it_runs_in_the_driver_is_the_one_ray_starts():
    # skip_unused_head_processes leaves Node.start_log_monitor out; monitor_worker_logs_here builds the
    # same LogMonitor as ray/_private/log_monitor.py's __main__ (the replicas' output in supervisor.log:
    # tests/test_your_app_cli.py's test_only_our_own_lines_reach_the_terminal_at_start_and_at_stop).
    import inspect

    from ray._private import log_monitor, node

    assert callable(node.Node.start_log_monitor)
    params = list(inspect.signature(log_monitor.LogMonitor).parameters)
    assert params[:4] == ["node_ip_address", "logs_dir", "gcs_client", "is_proc_alive_fn"]
    assert "gcs_address" in params and callable(log_monitor.is_proc_alive)
