"""`gradio-serve up --address` on a cluster made by a plain `ray start --head`, as a new user makes it.

Ray 2.60's `ray start` turns token authentication on by itself when ~/.ray/auth_token holds a token
(any earlier `ray.init()` of this user, or `ray get-auth-token --generate`, made one); nothing in the
user's environment says RAY_AUTH_*. ray.init with an explicit
address does not read that token by itself (Ray's CLI does), so the cluster refused us with
"cannot reach the Ray cluster". Each user here is a HOME of the test's own: the one that made the
cluster (its token in ~/.ray/auth_token), one without a token, one with a wrong token.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from gradio_client import Client
from ray_cluster import RayCluster
from supervisor_run import ROOT, Up, free_port

pytestmark = pytest.mark.slow


def user_env(serving_env: dict, home) -> dict:
    env = {k: v for k, v in serving_env.items() if not k.startswith("RAY_AUTH") and k != "RAY_ADDRESS"}
    return {**env, "HOME": str(home)}


@pytest.fixture(scope="module")
def plain_cluster(tmp_path_factory):
    home = tmp_path_factory.mktemp("cluster-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    made = subprocess.run([str(Path(sys.executable).parent / "ray"), "get-auth-token", "--generate"], check=False,
                          env={**env, "HOME": str(home)}, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr[-2000:]
    c = RayCluster({**os.environ, "HOME": str(home)}, head_cpus=2, worker_cpus=0, own_token=False)
    try:
        c.start()
        assert "Token authentication is enabled" in (c.tmp / "head.log").read_text()
        c.home = home
        yield c
    finally:
        c.stop()


def up_cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "serving.cli", "up", *args], check=False, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_token_in_the_users_home_is_used(plain_cluster, serving_env, tmp_path):
    up = Up(["--address", plain_cluster.address, "--app", "tests/apps/text_interface.py", "--num-cpus", "0.5",
             "--port", str(free_port())], user_env(serving_env, plain_cluster.home), tmp_path / "up.log")
    try:
        running = up.wait_running(timeout=240)
        assert Client(running["url"], verbose=False).predict("Hello World", "-", api_name="/slugify") == "hello-world"
    finally:
        up.stop()
    assert up.proc.returncode == 0, up.events[-3:]


def test_no_token_and_a_wrong_token_are_said_as_such(plain_cluster, serving_env, tmp_path):
    address = plain_cluster.address
    no_token = up_cli(user_env(serving_env, tmp_path / "empty-home"), "--address", address,
                      "--app", "tests/apps/text_interface.py", "--port", str(free_port()))
    assert no_token.returncode == 2, (no_token.stdout, no_token.stderr[-2000:])
    assert f"the Ray cluster at {address} requires Ray's token authentication, and no token was found" in no_token.stdout
    assert "ray get-auth-token" in no_token.stdout

    wrong = tmp_path / "wrong-token"
    wrong.write_text(secrets.token_hex(32))
    env = {**user_env(serving_env, tmp_path / "empty-home"), "RAY_AUTH_TOKEN_PATH": str(wrong)}
    refused = up_cli(env, "--address", address, "--app", "tests/apps/text_interface.py", "--port", str(free_port()))
    assert refused.returncode == 2, (refused.stdout, refused.stderr[-2000:])
    assert f"the Ray cluster at {address} refused the token from RAY_AUTH_TOKEN_PATH={wrong}" in refused.stdout
