"""`gradio-serve up --app`: the life cycle of your own app through the CLI, and its failures.

- A missing file or a syntax error is refused before Ray starts; an app that cannot be imported
  (a package it needs is not installed) is refused before anything is deployed, naming the file
  and line; in every case the exit code is 2 and nothing of the start is left running.
- A running app: `status` names it, `apply --replicas 2` scales it in place (the first replica
  keeps running), the login asked for off loopback guards it, and `down` stops everything.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest
import yaml
from gradio_client import Client
from supervisor_run import ROOT, Up, free_port, group_alive

pytestmark = pytest.mark.slow

APP = """
import os
import gradio as gr

def whoami(name):
    return f"hello {name} from {os.getpid()}"

demo = gr.Interface(whoami, "textbox", "textbox", api_name="whoami")

if __name__ == "__main__":
    demo.launch()
"""


def cli(env, *args, timeout=180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "serving.cli", *args], check=False, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def failed_start(env, tmp_path, *args) -> tuple[Up, dict]:
    up = Up(list(args), env, tmp_path / "up.log")
    try:
        error = up.wait_phase("error", "running", timeout=240)
        assert error["phase"] == "error", up.events[-3:]
        assert up.proc.wait(timeout=120) == 2
    finally:
        up.stop()
    deadline = time.monotonic() + 30
    while group_alive(up.pgid) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not group_alive(up.pgid), "a process of the failed start is still running"
    return up, next(e for e in up.events if e["event"] == "error")


def test_missing_file_and_syntax_error_are_refused_before_ray_starts(serving_env, tmp_path):
    up, error = failed_start(serving_env, tmp_path, "--app", str(tmp_path / "nope.py"), "--port", str(free_port()))
    assert "nope.py does not exist" in error["message"]
    assert not any(e.get("phase") == "starting_cluster" for e in up.events)

    bad = tmp_path / "bad.py"
    bad.write_text("import gradio as gr\ndemo = gr.Interface(\n")
    up, error = failed_start(serving_env, tmp_path, "--app", str(bad), "--port", str(free_port()))
    assert f"{bad}, line" in error["message"] and "syntax" in error["hint"]
    assert not any(e.get("phase") == "starting_cluster" for e in up.events)


def test_an_app_that_cannot_be_imported_is_refused_with_its_file_and_line(serving_env, tmp_path):
    """A Gradio app by its text is deployed while it is imported aside (serving/cluster/app_inspection.py):
    the import's error, not Serve's, ends the start, and nothing of it stays."""
    app = tmp_path / "needs_pkg.py"
    app.write_text("import gradio as gr\nimport definitely_not_installed_pkg\ndemo = gr.Blocks()\n")
    up, error = failed_start(serving_env, tmp_path, "--app", str(app), "--port", str(free_port()))
    assert error["message"] == f"{app}, line 2: imports 'definitely_not_installed_pkg', which is not installed here"
    assert "pip install definitely_not_installed_pkg" in error["hint"]
    assert not any(e.get("phase") == "running" for e in up.events)


def test_an_app_that_fails_only_in_its_replica_is_told_by_its_error(serving_env, tmp_path):
    """Its replica's traceback goes to the log, not the terminal: the error names the file, the line and
    what is missing (it was Serve's first line, '... See controller logs for details. Error:')."""
    app = tmp_path / "replica_only.py"
    app.write_text("import ray\nimport gradio as gr\nif ray.is_initialized():\n    import not_in_the_replica_pkg\n"
                   "demo = gr.Blocks()\n")
    _, error = failed_start(serving_env, tmp_path, "--app", str(app), "--port", str(free_port()))
    assert error["message"] == (f"the app failed to deploy: {app}, line 4: imports 'not_in_the_replica_pkg', "
                                "which is not installed here"), error


def test_model_flags_do_not_mix_with_your_app(serving_env, tmp_path):
    (tmp_path / "demo.py").write_text(APP)
    run = cli(serving_env, "up", "--app", str(tmp_path / "demo.py"), "--model", "gpt2")
    assert run.returncode == 2 and "--model picks models for the built-in apps" in run.stderr + run.stdout


def test_export_carries_the_folder_as_working_dir(serving_env, tmp_path):
    (tmp_path / "demo.py").write_text(APP)
    run = cli(serving_env, "export", "--app", f"{tmp_path / 'demo.py'}:demo", "--replicas", "2", "--num-cpus", "0.5")
    assert run.returncode == 0, run.stderr
    app = yaml.safe_load(run.stdout)["applications"][0]
    assert app["runtime_env"] == {"working_dir": f"local://{tmp_path.resolve()}"}  # Serve's schema takes no path
    assert app["args"]["config"]["app"] == {"target": "demo.py:demo", "num_cpus": 0.5, "replicas": 2}
    assert app["deployments"][0]["name"] == "app" and app["deployments"][0]["num_replicas"] == 2
    kuberay = yaml.safe_load(cli(serving_env, "export", "--app", str(tmp_path / "demo.py"), "--kuberay").stdout)
    assert f"working_dir: local://{tmp_path.resolve()}" in kuberay["spec"]["serveConfigV2"]


def test_status_apply_replicas_login_and_down(serving_env, tmp_path):
    (tmp_path / "demo.py").write_text(textwrap.dedent(APP))
    port = free_port()
    up = Up(["--app", str(tmp_path / "demo.py"), "--num-cpus", "0.5", "--port", str(port),
             "--host", "0.0.0.0", "--username", "ann"], {**serving_env, "GRADIO_SERVE_PASSWORD": "secret-pw"},
            tmp_path / "up.log")
    try:
        running = up.wait_running(timeout=240)
        url = running["url"]
        first = up.replica_pids("app")
        assert len(first) == 1

        # Off loopback, the login is required: the API refuses without it, and works with it.
        assert httpx.post(url + "gradio_api/run/whoami", json={"data": ["x"]}, timeout=30,
                          trust_env=False).status_code == 401
        client = Client(url, auth=("ann", "secret-pw"), verbose=False)
        assert client.predict("ann", api_name="/whoami") == f"hello ann from {first[0]}"

        status = cli(serving_env, "status")
        assert status.returncode == 0, status.stderr
        row = next(line for line in status.stdout.splitlines() if line.startswith("app "))
        assert row.split()[1:3] == ["HEALTHY", "1/1"], status.stdout

        applied = cli(serving_env, "apply", "--replicas", "2")
        assert applied.returncode == 0, applied.stderr + applied.stdout
        deadline = time.monotonic() + 120
        while len(up.replica_pids("app")) < 2 and time.monotonic() < deadline:
            time.sleep(1)
        pids = up.replica_pids("app")
        assert len(pids) == 2 and first[0] in pids, (first, pids)  # scaled in place: the first one kept

        down = cli(serving_env, "down")
        assert down.returncode == 0 and "Stopped." in down.stdout, down.stdout + down.stderr
        assert up.proc.wait(timeout=60) == 0
    finally:
        up.stop()
    assert not group_alive(up.pgid)


@pytest.mark.parametrize("what, stop", [("app", "ctrl-c"), ("model", "down")])
def test_only_our_own_lines_reach_the_terminal_at_start_and_at_stop(what, stop, request, serving_env, tmp_path):
    """Ray printed its own lines at every stop (`(raylet) Task ServeController.graceful_shutdown failed ...`),
    and the replicas' output: in a terminal they go to the log, which the first line names. The stop ends
    Serve before the cluster, so not even the log holds a failure Ray reports (a `(raylet)` line)."""
    if what == "model":
        request.getfixturevalue("tiny_models")  # in os.environ before serving_env copies it
        env = {**serving_env, "HF_HUB_CACHE": os.environ["HF_HUB_CACHE"], "HF_HUB_OFFLINE": "1"}
        args = ["--model", "tiny-random/t5"]
    else:
        (tmp_path / "demo.py").write_text("print('the app says hello from its replica')\n" + textwrap.dedent(APP))
        env, args = serving_env, ["--app", str(tmp_path / "demo.py"), "--num-cpus", "0.5"]
    proc = subprocess.Popen([sys.executable, "-m", "serving.cli", "up", *args, "--port", str(free_port())],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith(("[running]", "error:")):
                break
        assert lines[-1].startswith("[running]"), lines
        if stop == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in the terminal: its whole group
        else:
            down = cli(env, "down")  # from another terminal
            assert down.returncode == 0 and down.stdout.endswith("Stopped.\n") and not down.stderr, down
        lines += [line.rstrip("\n") for line in proc.stdout]
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    ours = ("Logs: ", "[", "info: ", "warning: ", "  hint: ")
    assert lines[-1] == "[stopped] stopped", lines
    assert all(line.startswith(ours) for line in lines), [line for line in lines if not line.startswith(ours)]
    log = Path(lines[0].removeprefix("Logs: ")).read_text()
    assert not [line for line in log.splitlines() if "(raylet)" in line], log[-3000:]
    if what == "app":
        assert "the app says hello from its replica" in log  # nothing is lost: it is in the log
