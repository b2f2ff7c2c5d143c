"""Before anything starts: is the port free, do the CPUs and GPUs fit, is there memory enough.

One set of rules for the window (which warns and lets the user go on), `gradio-serve` and
the supervisor (which refuse), so they never disagree on what fits. The facts come from
serving/core/machine.py; the wording differs by audience, the comparisons do not. Light: the
launcher imports it.
"""

from __future__ import annotations

import errno
import random
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from serving.core.config import ClusterConfig, LaunchConfig
from serving.core.machine import format_bytes

# Ray's processes, Serve's controller and proxy, and the Gradio ingress, before any model (rough).
SERVING_OVERHEAD_MB = 800
# Requested resources are sums of floats (3 x 0.1 CPUs): equal within this counts as fitting.
_EPSILON = 1e-9


class StartError(Exception):
    """Start failed in a way the user can fix; carries a hint."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.hint = hint


# -- the port ---------------------------------------------------------------------------------------


def _bind(host: str, port: int) -> None:
    """Bind host:port as Serve's proxy (uvicorn) binds, with SO_REUSEADDR; raises OSError."""
    address = "127.0.0.1" if host == "localhost" else host
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))


def port_problem(host: str, port: int) -> str | None:
    """Why the app could not listen on host:port now (e.g. "Address already in use"); None if it can.

    SO_REUSEADDR as the proxy sets it: a port whose last connections linger in TIME_WAIT is free
    to it, one that something listens on is not."""
    try:
        _bind(host, port)
    except OSError as exc:
        if host == "::" and exc.errno in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL):
            return port_problem("0.0.0.0", port)  # IPv6 is off here: the wildcard is IPv4's
        return exc.strerror or str(exc)
    return None


def port_in_use(host: str, port: int) -> bool:
    return port_problem(host, port) is not None


def free_port_near(port: int, host: str = "127.0.0.1") -> int | None:
    """The next free port after `port` (within 50), to suggest."""
    for candidate in range(port + 1, min(port + 50, 65536)):
        if not port_in_use(host, candidate):
            return candidate
    return None


def check_port_free(host: str, port: int) -> None:
    problem = port_problem(host, port)
    if problem:
        raise port_taken(host, port, problem)


def port_taken(host: str, port: int, problem: str) -> StartError:
    """The error for a port something else holds: what holds it, and what to do."""
    return StartError(f"port {port} on {host} is already in use ({problem})",
                      f"stop what uses it, or pick another port with --port (e.g. --port {port + 1})")


# Ports handed out by no one else: below the kernel's range for outgoing connections (Linux: 32768-60999;
# bind(0) picks from it too), above Ray's worker ports (10002-19999), below the ports Serve gives its
# replicas' own HTTP servers (30000-31000). A port picked here is still free seconds later, when our
# server binds it: one from bind(0) was taken by one of Ray's outgoing connections in the meantime
# (Serve's proxy failed to start, once in ~40 test starts).
QUIET_PORTS = range(20000, 30000)


def free_loopback_port() -> int:
    """A port nothing listens on now, for a server of our own on 127.0.0.1, that no outgoing
    connection will take before the server binds it."""
    for port in random.sample(QUIET_PORTS, 64):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:  # all taken: any free port
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- CPUs and GPUs ----------------------------------------------------------------------------------


def local_capacity(cluster: ClusterConfig, machine_cpus: float, machine_gpus: float) -> tuple[float, float]:
    """(CPUs, GPUs) of the local cluster: its configured size, else the machine's."""
    cpus = cluster.num_cpus or machine_cpus
    gpus = cluster.num_gpus if cluster.num_gpus is not None else machine_gpus
    return float(cpus), float(gpus)


@dataclass(frozen=True)
class Shortfall:
    """One way a configuration does not fit: `need` of `what` where only `have` is."""

    what: str  # "gpus" (in all), "cpus" (in all), or "replica_cpus" (one replica's)
    need: float
    have: float
    field: str = ""  # for replica_cpus: the deployment's field path (models.0 or app)


def shortfalls(config: LaunchConfig, cpus: float, gpus: float) -> list[Shortfall]:
    """Everything that does not fit `cpus`/`gpus` when each deployment runs its most replicas."""
    found = []
    need_gpus, need_cpus = config.requested_gpus(), config.requested_cpus()
    if need_gpus > gpus + _EPSILON:
        found.append(Shortfall("gpus", need_gpus, gpus))
    if need_cpus > cpus + _EPSILON:
        found.append(Shortfall("cpus", need_cpus, cpus))
    fields = ["app"] if config.app else [f"models.{i}" for i in range(len(config.models))]
    for field, deployment in zip(fields, config.deployments, strict=True):
        if deployment.num_cpus > cpus + _EPSILON:
            found.append(Shortfall("replica_cpus", deployment.num_cpus, cpus, field))
    return found


def check_fits(config: LaunchConfig, cpus: float, gpus: float, where: str) -> None:
    """Refuse (StartError) what does not fit `where` ("this machine", "the Ray cluster")."""
    for short in shortfalls(config, cpus, gpus):
        if short.what == "gpus":
            raise StartError(f"the models ask for {short.need:g} GPU(s) but {where} has {short.have:g}",
                             "set num_gpus to 0 for the models (--num-gpus 0), or run on a machine with GPUs")
        if short.what == "cpus":
            raise StartError(f"the models ask for {short.need:g} CPUs (CPUs x replicas, plus the ingress) "
                             f"but {where} has {short.have:g}",
                             "lower --num-cpus or --replicas, use fewer models, or add machines")
        raise StartError(f"{short.field}.num_cpus is {short.need:g} but {where} has only {short.have:g} CPUs",
                         f"lower num_cpus for {'your app' if config.app else 'that model'}")


# -- memory -----------------------------------------------------------------------------------------


def memory_estimate_mb(config: LaunchConfig, model_mb: Sequence[int | None]) -> tuple[int, list[str]]:
    """(estimated MB, what is not counted): Ray, Serve and Gradio, plus each model slot's replicas;
    `model_mb[i]` is one replica of slot i (None or 0: unknown). Your own app's size is its own."""
    total, unknown = SERVING_OVERHEAD_MB, ["your app"] if config.app else []
    for i, slot in enumerate(config.models):
        mb = model_mb[i] if i < len(model_mb) else None
        if not mb:
            unknown.append(slot.model)
            continue
        total += mb * slot.max_replicas
    return total, unknown


# -- what the window warns about --------------------------------------------------------------------


def resource_warnings(
    config: LaunchConfig, cpus: float, gpus: float, memory_available: int, memory: tuple[int, list[str]]
) -> list[str]:
    """What will not fit this machine: CPUs, GPUs, memory (`memory` from memory_estimate_mb);
    empty for a remote cluster (its resources are checked there)."""
    if config.cluster.address:
        return []
    warnings = []
    who = "Your app asks" if config.app else "The models ask"
    short = {s.what: s for s in shortfalls(config, cpus, gpus)}
    # (replica_cpus is left out: the window's boxes never allow more CPUs per replica than there are.)
    if "cpus" in short:
        warnings.append(
            f"{who} for {short['cpus'].need:g} CPUs"
            + ("" if config.app else f" (ingress {config.ingress_cpus:g} included)")
            + f" but this machine has {short['cpus'].have:g}: replicas that do not fit will never start. "
            f"Lower CPUs or replicas."
        )
    if "gpus" in short:
        warnings.append(f"{who} for {short['gpus'].need:g} GPUs but {short['gpus'].have:g} were found. "
                        "Set GPUs to 0 or fewer.")
    need_mb, unknown = memory
    if memory_available and need_mb * 1024 * 1024 > memory_available:
        warnings.append(
            f"The models need about {format_bytes(need_mb * 1024 * 1024)} of memory but only "
            f"{format_bytes(memory_available)} is free: the machine may swap or a replica may be killed. "
            f"Use fewer replicas or smaller models, or close other programs."
            + (f" (Not counted: {', '.join(unknown)}.)" if unknown else "")
        )
    return warnings


def precision_warnings(config: LaunchConfig, native_bf16: bool | None) -> list[str]:
    """bfloat16 on a CPU known to lack native support (emulated: slower than float32); local cluster only."""
    if config.cluster.address or native_bf16 is not False:
        return []
    return [
        f"Model {i + 1} ({slot.model}) uses bfloat16 on the CPU, but this CPU has no native bfloat16 "
        f"(AVX-512 BF16 or AMX): it will answer slower than with float32. Choose Auto or float32 "
        f"under Advanced."
        for i, slot in enumerate(config.models)
        if slot.dtype == "bfloat16" and slot.num_gpus == 0
    ]
