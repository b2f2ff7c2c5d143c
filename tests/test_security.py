"""Secure by default.

- No process of a running app (the supervisor's process group, and every process descending
  from the supervisor: GCS, raylet, agents, workers, replicas) listens off loopback.
- Ray's token authentication is on: the cluster's processes run with RAY_AUTH_MODE=token and
  a client without the token is refused.
- Serving on the network needs --username/--password (refused without; a CLI test covers the
  config side): with them, only the app's own port is off loopback, the page asks for a login,
  and an unauthenticated API call is refused.
- trust_remote_code is off unless asked for.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys

import httpx
import psutil
import pytest
from supervisor_run import ROOT, Up, free_port

# The figure this test holds the app to (issue 4): listening sockets not on loopback.
EXPECTED_OFF_LOOPBACK = 0


def is_loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%")[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return addr.is_loopback


def app_processes(up: Up) -> dict[int, psutil.Process]:
    """The supervisor, its process group, and everything descending from it."""
    root = psutil.Process(up.proc.pid)
    procs = {root.pid: root}
    for child in root.children(recursive=True):
        procs[child.pid] = child
    for p in psutil.process_iter():
        try:
            if os.getpgid(p.pid) == up.pgid:
                procs[p.pid] = p
                for child in p.children(recursive=True):
                    procs[child.pid] = child
        except (OSError, psutil.Error):
            continue
    return procs


def listeners(up: Up) -> list[dict]:
    procs = app_processes(up)
    found = []
    for conn in psutil.net_connections(kind="inet"):
        if conn.status != psutil.CONN_LISTEN or conn.pid not in procs:
            continue
        try:
            name = " ".join(procs[conn.pid].cmdline())[:100] or procs[conn.pid].name()
        except psutil.Error:
            name = "?"
        found.append({"ip": conn.laddr.ip, "port": conn.laddr.port, "pid": conn.pid, "process": name,
                      "loopback": is_loopback(conn.laddr.ip)})
    return found


def start(args: list[str], serving_env: dict, tmp_path) -> tuple[Up, dict]:
    up = Up(args, serving_env, tmp_path / "up.log")
    running = up.wait_running()
    return up, running


def tokenless_connect(gcs_address: str, home) -> subprocess.Popen:
    """A Ray client with no token (empty HOME, no RAY_AUTH_TOKEN*) trying to join the cluster."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    env["HOME"] = str(home)
    # Its own node IP on loopback too (as the app's), so it fails on the token, not on finding a node.
    env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    code = f"import ray; ray.init(address={gcs_address!r}); print('CONNECTED')"
    return subprocess.Popen([sys.executable, "-c", code], env=env, cwd=home, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_no_listener_off_loopback_and_ray_token_auth_on(tiny_models, serving_env, tmp_path):
    port = free_port()
    up, running = start(["--model", tiny_models["seq2seq"], "--port", str(port)], serving_env, tmp_path)
    probe = None
    try:
        base = running["url"]
        post = httpx.post(f"{base}gradio_api/call/summarize", json={"data": ["Warm every replica up."]}, timeout=30)
        assert post.status_code == 200  # the model replica and the ingress have started their servers
        httpx.get(f"{base}gradio_api/call/summarize/{post.json()['event_id']}", timeout=120)

        procs = app_processes(up)
        gcs = next(p for p in procs.values() if p.name() == "gcs_server")
        gcs_env = gcs.environ()
        assert gcs_env.get("RAY_AUTH_MODE") == "token", {k: v for k, v in gcs_env.items() if "AUTH" in k}
        gcs_port = next(c.laddr.port for c in psutil.net_connections(kind="inet")
                        if c.pid == gcs.pid and c.status == psutil.CONN_LISTEN)
        home = tmp_path / "home"
        home.mkdir()
        probe = tokenless_connect(f"127.0.0.1:{gcs_port}", home)

        found = listeners(up)
        table = "\n".join(f"  {'loopback' if s['loopback'] else 'OPEN    '} {s['ip']}:{s['port']}  pid {s['pid']}  "
                          f"{s['process']}" for s in sorted(found, key=lambda s: (s["loopback"], s["port"])))
        print(f"\nlisteners of the app's {len(procs)} processes:\n{table}")
        (ROOT / "test-artifacts").mkdir(exist_ok=True)
        (ROOT / "test-artifacts" / "listeners.json").write_text(json.dumps(found, indent=2))
        ports = {s["port"] for s in found}
        assert port in ports, "the app's own HTTP port was not found: the process search is broken"
        assert gcs_port in ports and len(found) >= 5, table
        off = [s for s in found if not s["loopback"]]
        assert len(off) == EXPECTED_OFF_LOOPBACK, f"listening off loopback:\n{table}"

        out, err = probe.communicate(timeout=120)
        assert probe.returncode != 0 and "CONNECTED" not in out, out
        assert "AuthenticationError" in err or "InvalidAuthToken" in err, err[-2000:]
    finally:
        if probe and probe.poll() is None:
            probe.kill()
            probe.wait()
        up.stop()


@pytest.mark.slow
def test_network_serving_needs_a_login(tiny_models, serving_env, tmp_path):
    port = free_port()
    up, running = start(["--model", tiny_models["seq2seq"], "--port", str(port), "--host", "0.0.0.0",
                         "--username", "alice"], {**serving_env, "GRADIO_SERVE_PASSWORD": "s3cret-pw"}, tmp_path)
    try:
        base = running["url"]
        # Only the app's own port is open to the network: that is what --host asked for.
        off = [s for s in listeners(up) if not s["loopback"]]
        assert [(s["ip"], s["port"]) for s in off] == [("0.0.0.0", port)], off

        with httpx.Client(base_url=base, timeout=30, follow_redirects=True) as anon:
            page = anon.get("/")  # the page renders Gradio's login form: its config says so
            assert page.status_code == 200 and '"auth_required":true' in page.text.replace(" ", ""), page.text[:300]
            config = anon.get("/config")
            assert config.status_code in (401, 403), config.status_code
            call = anon.post("/gradio_api/call/summarize", json={"data": ["let me in"]})
            assert call.status_code in (401, 403), (call.status_code, call.text[:200])
            wrong = anon.post("/login", data={"username": "alice", "password": "wrong"})
            assert wrong.status_code in (400, 401, 403), wrong.status_code
            assert anon.post("/gradio_api/call/summarize", json={"data": ["x"]}).status_code in (401, 403)

        with httpx.Client(base_url=base, timeout=30) as user:
            login = user.post("/login", data={"username": "alice", "password": "s3cret-pw"})
            assert login.status_code == 200, login.text[:200]
            call = user.post("/gradio_api/call/summarize", json={"data": ["The cat sat on the mat."]})
            assert call.status_code == 200, call.text[:200]
            stream = user.get(f"/gradio_api/call/summarize/{call.json()['event_id']}", timeout=120).text
            assert "event: complete" in stream, stream[-500:]
    finally:
        up.stop()


def test_network_host_without_login_is_refused(serving_env):
    result = subprocess.run([sys.executable, "-m", "serving.cli", "up", "--host", "0.0.0.0", "--port", str(free_port())],
                            check=False, cwd=ROOT, env=serving_env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result
    assert "username and password" in result.stdout + result.stderr


def test_risky_settings_are_opt_in():
    from serving.cli import _parser, config_from_args
    from serving.core.config import LaunchConfig, default_config

    assert LaunchConfig().models[0].trust_remote_code is False
    assert LaunchConfig().cluster.include_dashboard is False  # and on, it binds 127.0.0.1 (supervisor)
    assert LaunchConfig().http.host == "127.0.0.1"
    assert all(not s.trust_remote_code for s in default_config("fanout").models)
    plain = config_from_args(_parser().parse_args(["up", "--model", "some/model"]))
    assert plain.models[0].trust_remote_code is False
    opted = config_from_args(_parser().parse_args(["up", "--model", "some/model", "--trust-remote-code"]))
    assert opted.models[0].trust_remote_code is True


@pytest.mark.slow
def test_dashboard_when_asked_listens_on_loopback_only(tiny_models, serving_env, tmp_path):
    port = free_port()
    up, _ = start(["--model", tiny_models["seq2seq"], "--port", str(port), "--dashboard"], serving_env, tmp_path)
    try:
        procs = app_processes(up)
        dashboards = [p for p in procs.values() if "dashboard/dashboard.py" in " ".join(p.cmdline())]
        assert dashboards, "no dashboard process started"
        found = listeners(up)
        dash_ports = [s for s in found if s["pid"] in {p.pid for p in dashboards}]
        assert dash_ports, found  # the dashboard's HTTP server is there...
        assert all(s["loopback"] for s in dash_ports), dash_ports  # ...on 127.0.0.1 only
        assert [s for s in found if not s["loopback"]] == [], found
        assert any(httpx.get(f"http://127.0.0.1:{s['port']}/", timeout=10).status_code < 500 for s in dash_ports)
    finally:
        up.stop()
