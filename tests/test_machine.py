"""serving/core/machine.py is the one probe: CPUs narrowed by the affinity mask and the cgroup quota, GPUs by
CUDA_VISIBLE_DEVICES; the supervisor's own check counts with it, as the window does."""

from __future__ import annotations

import subprocess

import pytest

from serving.core import machine
from serving.core.config import LaunchConfig
from serving.core.preflight import StartError

SMI = "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-a)\nGPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-b)\n"


def test_cpus_follow_the_affinity_mask_and_the_cgroup_quota(monkeypatch):
    monkeypatch.setattr(machine.os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3})
    monkeypatch.setattr(machine, "_cgroup_cpu_limit", lambda: None)
    assert machine.cpu_count() == 4
    monkeypatch.setattr(machine, "_cgroup_cpu_limit", lambda: 2.5)  # a quota rounds up, as Ray counts it
    assert machine.cpu_count() == 3
    monkeypatch.setattr(machine, "_cgroup_cpu_limit", lambda: 0.2)
    assert machine.cpu_count() == 1


def test_gpus_follow_cuda_visible_devices(monkeypatch):
    monkeypatch.setattr(machine.shutil, "which", lambda _name: "/usr/bin/nvidia-smi")
    monkeypatch.setattr(machine.subprocess, "run",
                        lambda *a, **k: subprocess.CompletedProcess(a, 0, stdout=SMI, stderr=""))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert machine.detect_gpus() == ("NVIDIA H100 80GB HBM3",) * 2 and machine.gpu_count() == 2
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert machine.gpu_count() == 1
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert machine.gpu_count() == 0


def test_the_supervisor_counts_this_machine_as_the_window_does(monkeypatch):
    from serving.cluster import cluster_checks

    monkeypatch.setattr(machine, "cpu_count", lambda: 1)
    monkeypatch.setattr(machine, "gpu_count", lambda: 0)
    config = LaunchConfig.from_dict({"models": [{"num_cpus": 1, "replicas": 2}]})
    with pytest.raises(StartError, match="ask for 2 CPUs .* but this machine has 1"):
        cluster_checks.check_local_resources(config)
    sized = LaunchConfig.from_dict({"models": [{"num_cpus": 1, "replicas": 2}], "cluster": {"num_cpus": 2}})
    cluster_checks.check_local_resources(sized)  # the local cluster's own size counts instead
    with pytest.raises(StartError, match="1 GPU"):
        cluster_checks.check_local_resources(LaunchConfig.from_dict({"models": [{"num_gpus": 1}]}))
