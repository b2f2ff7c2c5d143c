"""A second machine joins with a token: real hosts made of network namespaces (needs root).

- host A (namespace, 10.77.1.1 towards B, 10.77.2.1 towards the client) runs `gradio-serve up --app
  tests/apps/counter_files.py --replicas 2 --num-cpus 1 --cpus 1 --allow-join 10.77.1.1`: it has room
  for one replica, the other waits for a machine;
- host B (10.77.1.2) runs `gradio-serve join 10.77.1.1:6379`: refused without the token and with a
  wrong one, then joined with a copy of A's token file;
- a client in a third namespace (10.77.2.2) uses the app only through A's address (its login on).
Checked: replicas run on both hosts; gr.State sessions through A keep their counts on either, and an
upload then its answer's `file=` download work on either (each host's own temp folder); from the
client's side only the app's port of A answers; B killed (its processes), then the app answers from
A again and nothing hangs. Ray's processes of each host get their own temp dir. About 3 minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from supervisor_run import ROOT, Up

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip"), reason="network namespaces need root and iproute2"),
]

PY = sys.executable
A_TO_B, B_ADDR, A_TO_C, C_ADDR = "10.77.1.1", "10.77.1.2", "10.77.2.1", "10.77.2.2"
APP_PORT = 8765
USER, PASSWORD = "joiner", "a-long-test-password"

CLIENT = """
import json, os, sys
from gradio_client import Client
url, n, calls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sessions = []
for _ in range(n):
    c = Client(url, auth=(os.environ["JOIN_USER"], os.environ["GRADIO_SERVE_PASSWORD"]), verbose=False)
    sessions.append([list(c.predict(api_name="/bump")) for _ in range(calls)])
print(json.dumps(sessions))
"""
# An upload, then the answer's `file=` download, in each session: [sent, read back, downloaded, served by].
FILES_CLIENT = """
import json, os, sys, tempfile, uuid
from pathlib import Path
from gradio_client import Client, handle_file
url, n = sys.argv[1], int(sys.argv[2])
rows = []
for _ in range(n):
    c = Client(url, auth=(os.environ["JOIN_USER"], os.environ["GRADIO_SERVE_PASSWORD"]), verbose=False)
    c.predict(api_name="/bump")  # the session starts on its replica first
    sent = Path(tempfile.mkdtemp()) / "note.txt"
    sent.write_text(f"note {uuid.uuid4().hex}")
    text, upper, who = c.predict(handle_file(str(sent)), api_name="/read_back")
    rows.append([sent.read_text(), text, Path(upper).read_text(), who])
print(json.dumps(rows))
"""

SCAN = """
import json, socket, sys
open_ports = []
for port in json.loads(sys.argv[2]):
    with socket.socket() as s:
        s.settimeout(1)
        if s.connect_ex((sys.argv[1], port)) == 0:
            open_ports.append(port)
print(json.dumps(open_ports))
"""


NO_TOKEN = """
import sys
from serving.ray_private.tokens import gcs_refuses_token
print("refused" if gcs_refuses_token(sys.argv[1]) else "answered")
"""
# Ray's processes, as `ss -p` names them; the supervisor (Ray's driver, "python") also serves the app's port.
RAY_PROCESSES = ("gcs_server", "raylet", "ray::", "python")


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, text=True)


@pytest.fixture
def hosts():
    """Namespaces A, B, C, a veth pair A-B and one C-A; removed afterwards (their veths with them)."""
    tag = uuid.uuid4().hex[:6]
    a, b, c = f"gsA{tag}", f"gsB{tag}", f"gsC{tag}"
    try:
        for ns in (a, b, c):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        for (left, left_ip), (right, right_ip), net in (((a, A_TO_B), (b, B_ADDR), "ab"), ((a, A_TO_C), (c, C_ADDR), "ac")):
            ends = (f"v{net}l{tag}", f"v{net}r{tag}")
            sh("ip", "link", "add", ends[0], "type", "veth", "peer", "name", ends[1])
            for ns, end, ip in ((left, ends[0], left_ip), (right, ends[1], right_ip)):
                sh("ip", "link", "set", end, "netns", ns)
                sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", end)
                sh("ip", "-n", ns, "link", "set", end, "up")
        yield a, b, c
    finally:
        for ns in (a, b, c):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


class NetnsUp(Up):
    """`gradio-serve up --events` inside a namespace (`ip netns exec` execs: the PID is the supervisor's)."""

    def __init__(self, ns: str, args: list[str], env: dict, log_path: Path):
        super(Up, self).__init__(["ip", "netns", "exec", ns, PY, "-m", "serving.cli", "up", "--events", *args],
                                 env, log_path)
        self.ready_s = None


def in_ns(ns: str, args: list[str], env: dict, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", ns, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def host_env(tmp_path: Path, name: str) -> dict:
    """A host's own state, logs and Ray temp dir; no HTTP proxy, no Ray address or token from outside."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("RAY_AUTH") and k not in ("RAY_ADDRESS", "http_proxy", "https_proxy",
                                                         "HTTP_PROXY", "HTTPS_PROXY")}
    for key, sub in (("GRADIO_SERVE_STATE_DIR", "state"), ("GRADIO_SERVE_LOG_DIR", "logs")):
        env[key] = str(tmp_path / name / sub)
        Path(env[key]).mkdir(parents=True, exist_ok=True)
    # Short: Ray's socket paths under it must fit in 107 bytes.
    env["RAY_TMPDIR"] = tempfile.mkdtemp(prefix=f"gsj{name}", dir="/tmp")
    return {**env, "NO_PROXY": "*", "GRADIO_SERVE_PASSWORD": PASSWORD, "JOIN_USER": USER}


def netns_of(pid: int) -> str:
    return subprocess.run(["ip", "netns", "identify", str(pid)], capture_output=True, text=True, check=False).stdout.strip()


def port_owners(ns: str) -> dict[int, str]:
    out = subprocess.run(["ip", "netns", "exec", ns, "ss", "-Htlnp"], capture_output=True, text=True, check=True).stdout
    owners = {}
    for line in out.splitlines():
        fields = line.split()
        owners[int(fields[3].rpartition(":")[2])] = fields[5].split('"')[1] if '"' in line else "?"
    return owners


def listening_ports(ns: str) -> list[int]:
    out = subprocess.run(["ip", "netns", "exec", ns, "ss", "-Htln"], capture_output=True, text=True, check=True).stdout
    return sorted({int(line.split()[3].rpartition(":")[2]) for line in out.splitlines() if line.strip()})


def test_a_machine_joins_with_the_token_and_serves_half_the_app(hosts, tmp_path):
    a, b, c = hosts
    env_a, env_b, env_c = host_env(tmp_path, "A"), host_env(tmp_path, "B"), host_env(tmp_path, "C")
    up = NetnsUp(a, ["--app", "tests/apps/counter_files.py", "--replicas", "2", "--num-cpus", "1", "--cpus", "1",
                     "--allow-join", A_TO_B, "--host", A_TO_C, "--port", str(APP_PORT), "--username", USER],
                 env_a, tmp_path / "up.log")
    join = None
    try:
        _t, said = up.wait_for(lambda e: e.get("event") == "log" and "can join" in e.get("message", ""), 180)
        assert f"gradio-serve join {A_TO_B}:6379" in said["message"], said
        token = Path(env_a["GRADIO_SERVE_STATE_DIR"]) / "cluster-token"
        assert token.stat().st_mode & 0o777 == 0o600

        # Refused: no token at all, then a wrong one; nothing joins.
        refused = in_ns(b, [PY, "-m", "serving.cli", "join", f"{A_TO_B}:6379"], env_b, timeout=60)
        assert refused.returncode == 2 and "no cluster token" in refused.stderr, refused
        wrong = tmp_path / "wrong-token"
        wrong.write_text("0" * 64 + "\n")
        refused = in_ns(b, [PY, "-m", "serving.cli", "join", f"{A_TO_B}:6379", "--token-file", str(wrong)], env_b, 60)
        assert refused.returncode == 2 and "refused this token" in refused.stderr, refused

        copy = tmp_path / "token-copy"
        shutil.copy(token, copy)
        join = subprocess.Popen(["ip", "netns", "exec", b, PY, "-m", "serving.cli", "join", f"{A_TO_B}:6379",
                                 "--token-file", str(copy), "--cpus", "2"], cwd=ROOT, env=env_b,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        joined = join.stdout.readline()
        assert joined.startswith(f"joined {A_TO_B}:6379 as {B_ADDR}, bringing 2 CPUs"), joined
        url = up.wait_running(timeout=240)["url"]
        assert url == f"http://{A_TO_C}:{APP_PORT}/"
        pids = [p for p in _replicas_by_title() if netns_of(p) in (a, b)]
        assert sorted(netns_of(p) for p in pids) == sorted([a, b]), (pids, [netns_of(p) for p in pids])

        # The status lists both machines, each with the app's replica on it; `gradio-serve status` says so too.
        state_a = Path(env_a["GRADIO_SERVE_STATE_DIR"])
        machines = _machines_when(state_a, lambda ms: len(ms) == 2 and all(
            [(r["deployment"], r["state"]) for r in m["replicas"]] == [("app", "RUNNING")] for m in ms))
        assert [(m["address"], m["head"]) for m in machines] == [(A_TO_B, True), (B_ADDR, False)], machines
        assert machines[1]["cpus"] == 2, machines
        assert json.loads((state_a / "supervisor.json").read_text())["join_command"].startswith(
            f"gradio-serve join {A_TO_B}:6379 --token-file ")
        said = in_ns(a, [PY, "-m", "serving.cli", "status"], env_a, timeout=60)
        assert said.returncode == 0 and f"{B_ADDR}: 2 CPUs" in said.stdout and "another machine joins" in said.stdout, said

        # Sessions from the client's namespace, through A's address only, keep their state on either host.
        used = in_ns(c, [PY, "-c", CLIENT, url, "6", "3"], env_c)
        assert used.returncode == 0, used.stderr[-2000:]
        sessions = json.loads(used.stdout.strip().splitlines()[-1])
        for calls in sessions:
            assert [count for count, _ in calls] == [1, 2, 3] and len({who for _, who in calls}) == 1, sessions
        served_by = {int(who.removeprefix("pid ")) for calls in sessions for _, who in calls}
        assert {netns_of(p) for p in served_by} == {a, b}, (sessions, pids)
        # Gradio's files on either host: an upload, then the answer's file= download (each replica's temp folder).
        files = in_ns(c, [PY, "-c", FILES_CLIENT, url, "6"], env_c)
        assert files.returncode == 0, files.stderr[-2000:]
        rows = json.loads(files.stdout.strip().splitlines()[-1])
        assert all(text == sent and downloaded == sent.upper() for sent, text, downloaded, _ in rows), rows
        assert {netns_of(int(who.removeprefix("pid "))) for *_, who in rows} == {a, b}, rows

        # From the client's side: the app's port, and Ray's ports, which need the token. Ray binds its gRPC
        # servers (GCS, raylets, workers) to every address once the node's IP is not loopback; our own
        # HTTP ports other than the app's (Serve's proxy, the replicas' own) stay on loopback.
        scanned = json.loads(in_ns(c, [PY, "-c", SCAN, A_TO_C, json.dumps(listening_ports(a))], env_c).stdout)
        owners = port_owners(a)
        print("reachable from the client:", {port: owners.get(port) for port in scanned})
        assert APP_PORT in scanned and 6379 in scanned, scanned
        assert all(owners.get(port, "?").startswith(RAY_PROCESSES) for port in scanned if port != APP_PORT), owners
        refused = in_ns(c, [PY, "-c", NO_TOKEN, f"{A_TO_C}:6379"], env_c)
        assert refused.stdout.strip() == "refused", refused

        # B dies: the app answers from A again, and nothing hangs.
        for pid in subprocess.run(["ip", "netns", "pids", b], capture_output=True, text=True, check=True).stdout.split():
            os.kill(int(pid), signal.SIGKILL)  # every process of host B
        start = time.monotonic()
        again = in_ns(c, [PY, "-c", CLIENT, url, "4", "2"], env_c, timeout=120)
        while again.returncode != 0 and time.monotonic() - start < 60:  # a call meanwhile may fail, none hangs
            print("a call failed while A noticed B's end:", again.stderr.strip().splitlines()[-1][:200])
            again = in_ns(c, [PY, "-c", CLIENT, url, "4", "2"], env_c, timeout=120)
        assert again.returncode == 0, again.stderr[-2000:]
        sessions = json.loads(again.stdout.strip().splitlines()[-1])
        assert all(netns_of(int(who.removeprefix("pid "))) == a for calls in sessions for _, who in calls), sessions
        print(f"after B died, 4 new sessions answered from A in {time.monotonic() - start:.1f} s")
        up.wait_for(lambda e: e.get("event") == "log" and e.get("level") == "warning"
                    and f"machine {B_ADDR} left or died" in e.get("message", ""), 60)
        machines = _machines_when(state_a, lambda ms: len(ms) == 1)
        assert machines[0]["address"] == A_TO_B, machines
    finally:
        if join is not None and join.poll() is None:
            os.killpg(join.pid, signal.SIGKILL)
        up.stop()
        # What B's Ray left (its group died with SIGKILL above, or leaves with the join): by its temp dir.
        for env in (env_a, env_b):
            for line in subprocess.run(["pgrep", "-f", env["RAY_TMPDIR"]], capture_output=True, text=True,
                                       check=False).stdout.split():
                os.kill(int(line), signal.SIGKILL)
            shutil.rmtree(env["RAY_TMPDIR"], ignore_errors=True)


def _machines_when(state: Path, ok, timeout: float = 60) -> list[dict]:
    """The status record's machines once `ok` accepts them (the supervisor reads the nodes every ~2 s)."""
    deadline, machines = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            machines = json.loads((state / "status.json").read_text()).get("machines")
        except (OSError, ValueError):
            machines = None
        if machines is not None and ok(machines):
            return machines
        time.sleep(0.5)
    raise AssertionError(f"the status record's machines: {machines}")


def _replicas_by_title() -> list[int]:
    """Replica processes of any host (B's are not the supervisor's children); the caller keeps its hosts'."""
    out = subprocess.run(["pgrep", "-f", "ServeReplica:gradio-serve:app"], capture_output=True, text=True, check=False).stdout
    return [int(p) for p in out.split()]
