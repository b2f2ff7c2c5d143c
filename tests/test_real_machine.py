"""A user's real machine is not clean: a Ray cluster of theirs, RAY_ADDRESS, a stale record of a dead
cluster, an HTTP proxy in the environment, Gradio's own variables. `gradio-serve up` must start its
own cluster and reach its own app through all of that.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from gradio_client import Client
from ray_cluster import RayCluster
from supervisor_run import ROOT, Up, free_port

pytestmark = pytest.mark.slow

RECORD = Path("/tmp/ray/ray_current_cluster")
APP = "import gradio as gr\ndemo = gr.Interface(lambda x: x.upper(), 'textbox', 'textbox', api_name='shout')\n"


def dead_port() -> int:
    return free_port()  # nothing listens there once the probe socket is closed


def proxied(env: dict) -> dict:
    """Every proxy variable pointing at a dead port, and no no_proxy: requests that honour them fail."""
    proxy = f"http://127.0.0.1:{dead_port()}"
    env = {k: v for k, v in env.items() if k.lower() != "no_proxy"}
    return {**env, "http_proxy": proxy, "HTTP_PROXY": proxy, "https_proxy": proxy, "HTTPS_PROXY": proxy,
            "all_proxy": proxy, "ALL_PROXY": proxy}


@pytest.fixture
def stale_record():
    """/tmp/ray/ray_current_cluster naming a dead cluster, as `ray start` leaves it without `ray stop`."""
    old = RECORD.read_text() if RECORD.exists() else None
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    RECORD.write_text(f"127.0.0.1:{dead_port()}")
    try:
        yield RECORD.read_text()
    finally:
        if old is None:
            RECORD.unlink(missing_ok=True)
        else:
            RECORD.write_text(old)


def serve_app(env: dict, tmp_path: Path, *args: str) -> tuple[Up, str]:
    (tmp_path / "demo.py").write_text(APP)
    up = Up(["--app", str(tmp_path / "demo.py"), "--num-cpus", "0.5", *args], env, tmp_path / "up.log")
    running = up.wait_running(timeout=240)
    return up, running["url"]


def test_own_cluster_beside_a_running_one_with_ray_address_and_a_proxy(serving_env, tmp_path):
    theirs = RayCluster(dict(serving_env), head_cpus=1, worker_cpus=1)
    theirs.start()
    try:
        port = free_port()
        env = proxied({**serving_env, **theirs.auth_env, "RAY_ADDRESS": theirs.address,
                       "GRADIO_SERVER_PORT": str(port)})
        up, url = serve_app(env, tmp_path)
        try:
            assert url == f"http://127.0.0.1:{port}/"  # GRADIO_SERVER_PORT is the default port
            notice = [e for e in up.events if e["event"] == "log" and "already known" in e["message"]]
            assert notice and "--address auto" in notice[0]["message"]
            assert Client(url, verbose=False, httpx_kwargs={"trust_env": False}).predict("hi", api_name="/shout") == "HI"
            # Their cluster got nothing of ours.
            assert "gradio-serve" not in theirs.serve_details().get("applications", {})
        finally:
            up.stop()
        assert up.proc.returncode == 0, up.events[-3:]
        assert theirs.ray_status().returncode == 0  # and it still runs
    finally:
        theirs.stop()


def test_own_cluster_with_a_stale_record_and_a_dead_ray_address(serving_env, tmp_path, stale_record):
    env = proxied({**serving_env, "RAY_ADDRESS": f"127.0.0.1:{dead_port()}"})
    up, url = serve_app(env, tmp_path, "--port", str(free_port()))
    try:
        assert httpx.get(url, timeout=30, trust_env=False).status_code == 200
    finally:
        up.stop()
    assert up.proc.returncode == 0, up.events[-3:]


def test_no_traceback_reaches_the_terminal(serving_env, tmp_path):
    """A failure inside `gradio-serve` says what happened in one line and where the details are."""
    (tmp_path / "demo.py").write_text(APP)
    # A port that is taken: a clear error, exit 2, no traceback.
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        run = subprocess.run([sys.executable, "-m", "serving.cli", "up", "--app", str(tmp_path / "demo.py"),
                              "--port", str(taken.getsockname()[1])], cwd=ROOT, env=serving_env,
                             capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "is already in use" in run.stdout and "Traceback" not in run.stdout + run.stderr
    # A file that cannot be written: said plainly.
    export = subprocess.run([sys.executable, "-m", "serving.cli", "export", "--app", str(tmp_path / "demo.py"),
                             "-o", str(tmp_path / "no-such-dir" / "x.yaml")], cwd=ROOT, env=serving_env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert export.returncode == 2 and "cannot write" in export.stderr and "Traceback" not in export.stderr
    # An unexpected failure (a Hugging Face cache that is a file): one line plus the log's path.
    not_a_dir = tmp_path / "hub-cache-file"
    not_a_dir.write_text("")
    models = subprocess.run([sys.executable, "-m", "serving.cli", "models"], cwd=ROOT,
                            env={**serving_env, "HF_HUB_CACHE": str(not_a_dir)}, capture_output=True, text=True,
                            timeout=120, check=False)
    assert models.returncode == 1 and "Traceback" not in models.stdout + models.stderr, models.stderr
    assert "error: unexpected failure: " in models.stderr and "details in " in models.stderr
    log = Path(models.stderr.split("details in ")[1].strip())
    assert "Traceback" in log.read_text()


def test_password_from_env_file_and_a_warning_for_the_command_line(serving_env, tmp_path):
    (tmp_path / "demo.py").write_text(APP)
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")

    def exported(*args, env=serving_env):
        run = subprocess.run([sys.executable, "-m", "serving.cli", "export", "--app", str(tmp_path / "demo.py"),
                              "--host", "0.0.0.0", "--username", "ann", *args], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=120, check=False)
        return run

    run = exported("--password-file", str(secret))
    assert run.returncode == 0 and "password: from-file" in run.stdout and not run.stderr.strip(), run.stderr
    run = exported(env={**serving_env, "GRADIO_SERVE_PASSWORD": "from-env"})
    assert run.returncode == 0 and "password: from-env" in run.stdout, run.stderr
    run = exported("--password", "on-the-line")
    assert run.returncode == 0 and "shows in `ps`" in run.stderr
    run = exported()  # no password anywhere, no terminal to ask on
    assert run.returncode == 2 and "give both username and password" in run.stderr
    # A config file with a password that others can read gets a warning.
    config = tmp_path / "app.yaml"
    config.write_text("mode: app\napp: {target: demo.py}\nhttp: {host: 0.0.0.0, username: ann, password: pw}\n")
    config.chmod(0o644)
    run = subprocess.run([sys.executable, "-m", "serving.cli", "export", "--config", str(config)], cwd=ROOT,
                         env=serving_env, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0 and f"chmod 600 {config}" in run.stderr, run.stderr


def test_yaml_config_and_the_exported_file_round_trip(serving_env, tmp_path):
    (tmp_path / "demo.py").write_text(APP)
    out = tmp_path / "serve-config.yaml"
    run = subprocess.run([sys.executable, "-m", "serving.cli", "export", "--app", str(tmp_path / "demo.py"),
                          "--replicas", "2", "--num-cpus", "0.5", "--port", "8123", "-o", str(out)], cwd=ROOT,
                         env=serving_env, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    again = subprocess.run([sys.executable, "-m", "serving.cli", "export", "--config", str(out)], cwd=ROOT,
                           env=serving_env, capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 0, again.stderr
    assert again.stdout == out.read_text()  # the same app, the same file
    bad = tmp_path / "bad.yaml"
    bad.write_text("mode: app\napp: [target\n")
    run = subprocess.run([sys.executable, "-m", "serving.cli", "export", "--config", str(bad)], cwd=ROOT,
                         env=serving_env, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 2 and "is not valid YAML (line" in run.stderr, run.stderr


def test_gradio_server_name_needs_a_login_off_loopback(serving_env, tmp_path):
    (tmp_path / "demo.py").write_text(APP)
    run = subprocess.run([sys.executable, "-m", "serving.cli", "export", "--app", str(tmp_path / "demo.py")],
                         cwd=ROOT, env={**serving_env, "GRADIO_SERVER_NAME": "0.0.0.0"}, capture_output=True,
                         text=True, timeout=120, check=False)
    assert run.returncode == 2 and "exposes the app to the network" in run.stderr, run.stderr


def test_version_and_help(serving_env):
    run = subprocess.run([sys.executable, "-m", "serving.cli", "--version"], cwd=ROOT, env=serving_env,
                         capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0 and run.stdout.startswith("gradio-serve "), run.stdout
    helped = subprocess.run([sys.executable, "-m", "serving.cli", "up", "--help"], cwd=ROOT, env=serving_env,
                            capture_output=True, text=True, timeout=60, check=False).stdout
    assert "examples:" in helped and "--app" in helped and "--events" not in helped
    assert "logs: " in helped
