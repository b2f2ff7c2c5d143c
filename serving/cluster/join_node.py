"""`gradio-serve join HOST:PORT` and `gradio-serve leave`: this machine joins the cluster of another
(one started with `up --allow-join`, serving/cluster/joining.py) with its CPUs and GPUs, until Ctrl-C
or `leave`.

The token is read from a file, RAY_AUTH_TOKEN or a prompt, never from the command line (it would show
in `ps` and the shell's history), checked against the head before anything starts (a wrong one is
refused at once, where Ray would retry for a minute), and handed to Ray in a file of its own (0600).
Ray's node runs as `ray start --block` in a process group of our own: leaving ends that group, by its
id, and nothing else on the machine.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from serving.core import paths
from serving.core.config import ConfigError, split_join_address
from serving.core.preflight import StartError
from serving.core.process_group import signal_group

RECORD = "join.json"
START_TIMEOUT_S = 120
LEAVE_GRACE_S = 15


def _record() -> Path:
    return paths.state_dir() / RECORD


def read_token(token_file: str | None) -> str:
    if token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"--token-file {token_file}: {exc.strerror}") from None
        if not token:
            raise ConfigError(f"--token-file {token_file} is empty: copy the cluster-token file of the head again")
        return token
    if os.environ.get("RAY_AUTH_TOKEN"):
        return os.environ["RAY_AUTH_TOKEN"]
    if sys.stdin.isatty():
        token = getpass.getpass("Cluster token (the head's cluster-token file): ").strip()
        if token:
            return token
    raise ConfigError("no cluster token: give --token-file FILE (a copy of the head's cluster-token file, which "
                      "`up --allow-join` names) or set RAY_AUTH_TOKEN")


def outward_ip(host: str, port: int) -> str:
    """This machine's address on the way to host (no packet is sent)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.connect((host, port))
        return s.getsockname()[0]


def cmd_join(args) -> int:
    from serving.cluster.cluster_checks import check_address_reachable
    from serving.ray_private.tokens import cluster_nodes, gcs_refuses_token, use_cluster_token

    host, port = split_join_address(args.address)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    token = read_token(args.token_file)
    if (running := paths.read_json(_record())) and _alive(running.get("pid")):
        raise StartError(f"this machine already joined {running.get('address')} (pid {running['pid']})",
                         "leave it first: `gradio-serve leave`")
    folder = paths.state_dir() / "join"
    folder.mkdir(parents=True, exist_ok=True)
    token_file = folder / "token"
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    use_cluster_token(str(token_file))
    check_address_reachable(address)
    if gcs_refuses_token(address):
        raise StartError(f"the cluster at {address} refused this token",
                         "copy the head's cluster-token file again (it changes only if deleted there)")
    node_ip = args.node_ip or outward_ip(host, port)
    ray_cli = Path(sys.executable).with_name("ray")
    command = [str(ray_cli), "start", "--address", address, "--node-ip-address", node_ip, "--block",
               "--disable-usage-stats"]
    if args.cpus is not None:
        command += ["--num-cpus", str(args.cpus)]
    if args.gpus is not None:
        command += ["--num-gpus", str(args.gpus)]
    from serving.cluster.local_cluster import tune_serve_env

    tune_serve_env()  # the head's Serve settings for the replicas here too (each serves HTTP itself)
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_TOKEN", "RAY_ADDRESS")}
    log = paths.log_dir() / "join.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        node = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True)
    paths.write_json_atomic(_record(), {"pid": os.getpid(), "pgid": node.pid, "address": address, "node_ip": node_ip})
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    try:
        mine = _wait_for_node(address, node_ip, node, stop, cluster_nodes)
        if mine is None:
            return 1 if node.poll() is not None or not stop.is_set() else 0
        r = mine.get("Resources", {})
        print(f"joined {address} as {node_ip}, bringing {r.get('CPU', 0):g} CPUs, {r.get('GPU', 0):g} GPUs and "
              f"{r.get('memory', 0) / 2**30:.1f} GB of memory; Ctrl-C or `gradio-serve leave` leaves", flush=True)
        while not stop.wait(1.0):
            if node.poll() is not None:
                print(f"error: Ray's node here ended ({node.returncode}): the head went away? See {log}",
                      file=sys.stderr)
                return 1
        print("leaving", flush=True)
        return 0
    finally:
        _end(node)
        with contextlib.suppress(OSError):
            _record().unlink()
        with contextlib.suppress(OSError):
            token_file.unlink()


def _wait_for_node(address: str, node_ip: str, node: subprocess.Popen, stop: threading.Event, cluster_nodes):
    """This machine's node in the cluster once it registered; None when it failed (said) or was stopped."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while not stop.is_set() and time.monotonic() < deadline:
        if node.poll() is not None:
            print(f"error: Ray's node did not start here ({node.returncode}); see {paths.log_dir() / 'join.log'}",
                  file=sys.stderr)
            return None
        with contextlib.suppress(Exception):  # the node is still starting
            for n in cluster_nodes(address):
                if n.get("Alive") and n.get("NodeManagerAddress") == node_ip:
                    return n
        stop.wait(0.5)
    if not stop.is_set():
        print(f"error: this machine did not appear in the cluster at {address} within {START_TIMEOUT_S} s; "
              f"see {paths.log_dir() / 'join.log'}", file=sys.stderr)
    return None


def _end(node: subprocess.Popen) -> None:
    """Ends Ray's node here: SIGTERM to its group (ours), then SIGKILL to what is left."""
    signal_group(node.pid, None, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        node.wait(timeout=LEAVE_GRACE_S)
    signal_group(node.pid, None, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        node.wait(timeout=5)


def _alive(pid) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cmd_leave(_args) -> int:
    running = paths.read_json(_record())
    if not running or not _alive(running.get("pid")):
        print("this machine has joined no cluster")
        return 0
    os.kill(running["pid"], signal.SIGTERM)
    deadline = time.monotonic() + LEAVE_GRACE_S + 10
    while _alive(running["pid"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _alive(running["pid"]):
        print(f"error: `gradio-serve join` (pid {running['pid']}) did not leave in time", file=sys.stderr)
        return 1
    print(f"left {running.get('address')}")
    return 0


def add_commands(sub) -> None:
    join = sub.add_parser("join", help="join another machine's cluster (one started with `up --allow-join`)",
                          description="Join another machine's cluster with this machine's CPUs and GPUs, until "
                                      "Ctrl-C or `gradio-serve leave`. The token is read from --token-file, "
                                      "RAY_AUTH_TOKEN or a prompt, never from the command line.")
    join.add_argument("address", metavar="HOST:PORT", help="the head's address, as `up --allow-join` shows it")
    join.add_argument("--token-file", metavar="FILE", help="a copy of the head's cluster-token file")
    join.add_argument("--cpus", type=int, help="CPUs to bring (default: all)")
    join.add_argument("--gpus", type=int, help="GPUs to bring (default: detected)")
    join.add_argument("--node-ip", metavar="IP", help="this machine's address the others reach (default: the one "
                                                      "on the way to the head)")
    sub.add_parser("leave", help="leave the cluster this machine joined")

