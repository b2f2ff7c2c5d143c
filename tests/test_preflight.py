"""serving/core/preflight.py: one set of rules for the port, the CPUs/GPUs and memory, whoever asks;
serving/core/config.py as the one source of bounds; serving/core/process_group.py's TERM, wait, KILL."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from serving.core import preflight
from serving.core.config import (
    DTYPES,
    MAX_CPUS_PER_REPLICA,
    MAX_REPLICAS,
    Autoscaling,
    Bounds,
    HttpConfig,
    LaunchConfig,
    ModelSlot,
    bounds,
)
from serving.core.preflight import QUIET_PORTS, StartError, free_loopback_port
from serving.core.process_group import group_alive, pid_alive, stop_group


def _config(**slot) -> LaunchConfig:
    return LaunchConfig.from_dict({"models": [{"model": "gpt2", **slot}]})


def test_bounds_come_from_the_config_fields():
    assert bounds(ModelSlot, "num_cpus") == Bounds(0, 1024, exclusive_minimum=True)
    assert bounds(HttpConfig, "port") == Bounds(1, 65535)
    assert bounds(Autoscaling, "min_replicas") == Bounds(0, 64)
    assert (MAX_CPUS_PER_REPLICA, MAX_REPLICAS) == (1024, 64)
    assert bounds(ModelSlot, "num_cpus").allows(0.25) and not bounds(ModelSlot, "num_cpus").allows(0)
    assert DTYPES == ("auto", "float32", "bfloat16", "float16")
    assert ModelSlot.model_fields["dtype"].annotation.__args__ == DTYPES


def test_a_listening_port_is_in_use_for_its_host_and_the_wildcard():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert preflight.port_in_use("127.0.0.1", port)
        assert preflight.port_in_use("localhost", port)
        assert preflight.port_in_use("0.0.0.0", port), "the proxy could not bind the wildcard either"
        with pytest.raises(StartError, match=f"port {port} on 127.0.0.1 is already in use") as err:
            preflight.check_port_free("127.0.0.1", port)
        assert f"--port {port + 1}" in err.value.hint
        free = preflight.free_port_near(port)
        assert free and free > port and not preflight.port_in_use("127.0.0.1", free)


def test_fit_rules_are_shared_by_the_refusal_and_the_warning():
    config = _config(num_cpus=2, replicas=2)  # 4 CPUs + the ingress's 0
    assert [s.what for s in preflight.shortfalls(config, cpus=4, gpus=0)] == []
    assert [s.what for s in preflight.shortfalls(config, cpus=2, gpus=0)] == ["cpus"]
    with pytest.raises(StartError, match="ask for 4 CPUs .* but this machine has 2"):
        preflight.check_fits(config, 2, 0, "this machine")
    warnings = preflight.resource_warnings(config, 2, 0, memory_available=0, memory=(0, []))
    assert len(warnings) == 1 and warnings[0].startswith("The models ask for 4 CPUs (ingress 0 included)")
    # Sums of fractions fit exactly (0.1 + 0.1 + 0.1 is 0.30000000000000004).
    assert preflight.shortfalls(_config(num_cpus=0.1, replicas=3), cpus=0.3, gpus=0) == []
    gpu = _config(num_gpus=1)
    with pytest.raises(StartError, match="ask for 1 GPU"):
        preflight.check_fits(gpu, 8, 0, "this machine")
    assert preflight.resource_warnings(gpu, 8, 0, 0, (0, [])) == [
        "The models ask for 1 GPUs but 0 were found. Set GPUs to 0 or fewer."]
    remote = LaunchConfig.from_dict({"models": [{"num_cpus": 64}], "cluster": {"address": "auto"}})
    assert preflight.resource_warnings(remote, 1, 0, 1, (10**6, [])) == [], "checked on the cluster instead"


def test_memory_estimate_and_warning():
    config = LaunchConfig.from_dict({"mode": "fanout", "models": [{"model": "a", "replicas": 2}, {"model": "b"}]})
    assert preflight.memory_estimate_mb(config, [100, None]) == (preflight.SERVING_OVERHEAD_MB + 200, ["b"])
    [warning] = preflight.resource_warnings(config, 8, 0, 500 * 1024 * 1024, (1000, ["b"]))
    assert "1000 MB of memory but only 500 MB is free" in warning and "(Not counted: b.)" in warning


def test_precision_warning_only_for_bfloat16_on_a_cpu_without_it():
    config = _config(dtype="bfloat16")
    assert preflight.precision_warnings(config, native_bf16=True) == []
    assert preflight.precision_warnings(config, native_bf16=None) == []
    assert "no native bfloat16" in preflight.precision_warnings(config, native_bf16=False)[0]
    assert preflight.precision_warnings(_config(dtype="bfloat16", num_gpus=1), native_bf16=False) == []


def _group(stubborn: bool) -> subprocess.Popen:
    code = ("import signal, time\n" + ("signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" if stubborn else "")
            + "print('ready', flush=True)\ntime.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_stop_group_terms_then_kills_after_the_grace_period():
    polite = _group(stubborn=False)
    assert stop_group(polite.pid, polite.pid, grace_s=5, done=lambda: polite.poll() is not None)
    assert polite.returncode == -signal.SIGTERM
    stubborn = _group(stubborn=True)
    start = time.monotonic()
    assert not stop_group(stubborn.pid, grace_s=0.5, done=lambda: stubborn.poll() is not None)
    assert stubborn.wait(timeout=5) == -signal.SIGKILL and time.monotonic() - start >= 0.5
    assert not group_alive(stubborn.pid) and not pid_alive(stubborn.pid)
    left = _group(stubborn=True)
    try:
        assert not stop_group(left.pid, grace_s=0.3, kill=False, done=lambda: left.poll() is not None)
        assert left.poll() is None, "kill=False leaves it running"
    finally:
        left.kill()
        left.wait()


def test_a_free_loopback_port_is_one_no_outgoing_connection_takes():
    low, _high = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    ports = {free_loopback_port() for _ in range(20)}
    assert all(p in QUIET_PORTS and p < low for p in ports), ports  # below the kernel's range for bind(0)
    assert len(ports) > 1  # picked at random: two servers started together rarely collide
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports.pop()))  # and free
