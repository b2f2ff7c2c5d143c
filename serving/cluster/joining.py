"""Letting other machines join the cluster we start (`up --allow-join IP[:PORT]`): the head side.

Our cluster listens on loopback only. To let a second machine join, its Ray head must listen on a LAN
address, and then anyone who can reach that address could run code as this user: Ray's own security
guidance warns against an open `ray start --head`. So the head turns on Ray's token authentication
(RAY_AUTH_MODE=token) with a token of our own, made once and kept in the state folder with 0600
permissions: without it nothing joins and nothing is submitted. The app's port stays where it was
(loopback by default), and so does the dashboard; Ray's own ports are on the LAN address, as a
cluster of several machines needs. The other side: `gradio-serve join` (serving/cluster/join_node.py).
"""

from __future__ import annotations

import os
import secrets
import shlex
from pathlib import Path

from serving.core import paths
from serving.core.config import split_join_address
from serving.core.preflight import StartError, check_port_free

TOKEN_FILE = "cluster-token"


def token_path() -> Path:
    return paths.state_dir() / TOKEN_FILE


def ensure_token() -> Path:
    """The cluster token's file, made on first use (0600, created as such: never readable by others)."""
    path = token_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)
        if path.read_text(encoding="utf-8").strip():
            return path
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(secrets.token_hex(32) + "\n")
    return path


def local_addresses() -> set[str]:
    import psutil

    return {a.address.split("%")[0] for addrs in psutil.net_if_addrs().values() for a in addrs}


def open_head(join_address: str) -> str:
    """Before ray.init starts our cluster: its head on `join_address`, with the token. Returns the IP."""
    host, port = split_join_address(join_address)
    if host not in local_addresses():
        raise StartError(f"--allow-join {join_address}: {host} is not an address of this machine",
                         "give one of its LAN addresses (see `ip -brief address`)")
    check_port_free(host, port)
    from serving.ray_private.tokens import use_cluster_token

    os.environ["RAY_GCS_SERVER_PORT"] = str(port)  # Ray's head port (else a random one)
    use_cluster_token(str(ensure_token()))
    return host


def join_command(join_address: str) -> str:
    return f"gradio-serve join {join_address} --token-file {shlex.quote('PATH/TO/COPY')}"


def invitation(join_address: str) -> str:
    """What to run on the other machine, and how its token gets there."""
    return (f"other machines can join: copy {token_path()} to one (it is secret: anyone with it can run code "
            f"here), then run there `{join_command(join_address)}`")


def record_fields(join_address: str | None) -> dict:
    """The supervisor record's join_command and token_file (serving/core/protocol.py), for the launcher."""
    return {"join_command": join_command(join_address), "token_file": str(token_path())} if join_address else {}
