"""What this machine offers, found without torch or ray: the one probe the window, the CLI
and the supervisor share, so they agree on what fits.

CPUs from the CPU affinity mask and the cgroup quota (as Ray counts them); memory from
psutil; GPUs from `nvidia-smi -L`, else /proc/driver/nvidia, narrowed by
CUDA_VISIBLE_DEVICES; native bfloat16 from the x86 CPU flags in /proc/cpuinfo (None where
that cannot be read: other systems, other architectures). `probe()` and `gpu_count()` may
run a subprocess, so the window calls them from a worker; `cpu_count()` is instant.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import psutil


@dataclass(frozen=True)
class MachineInfo:
    cpus: int
    memory_total: int  # bytes
    memory_available: int  # bytes
    gpus: tuple[str, ...] = field(default_factory=tuple)
    native_bf16: bool | None = None  # None: not known (then nothing is said about bfloat16 speed)

    @property
    def gpu_count(self) -> int:
        return len(self.gpus)


def _cgroup_cpu_limit() -> float | None:
    """A container's CPU quota (cgroup v2, then v1); Ray honours it, so the window must too."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            return int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        if quota > 0 and period > 0:
            return quota / period
    except (OSError, ValueError):
        pass
    return None


def cpu_count() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = psutil.cpu_count(logical=True) or os.cpu_count() or 1
    limit = _cgroup_cpu_limit()
    if limit is not None:
        n = min(n, max(1, math.ceil(limit)))
    return max(1, n)


def _visible_devices_cap() -> int | None:
    """CUDA_VISIBLE_DEVICES narrows what Ray (and torch) will use."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    return len([d for d in value.split(",") if d.strip() and d.strip() != "-1"])


def detect_gpus(timeout: float = 5.0) -> tuple[str, ...]:
    names: list[str] = []
    exe = shutil.which("nvidia-smi")
    if exe:
        try:
            out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=timeout, check=False).stdout
            # "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-...)"
            names = [
                line.split(":", 1)[1].split("(UUID")[0].strip()
                for line in out.splitlines()
                if line.startswith("GPU ") and ":" in line
            ]
        except (OSError, subprocess.SubprocessError):
            names = []
    if not names:
        root = Path("/proc/driver/nvidia/gpus")
        try:
            for gpu in sorted(root.iterdir()):
                model = "NVIDIA GPU"
                try:
                    for line in (gpu / "information").read_text().splitlines():
                        if line.startswith("Model:"):
                            model = line.split(":", 1)[1].strip()
                except OSError:
                    pass
                names.append(model)
        except OSError:
            pass
    cap = _visible_devices_cap()
    if cap is not None:
        names = names[:cap]
    return tuple(names)


def gpu_count() -> int:
    """GPUs Ray would use here (may run nvidia-smi)."""
    return len(detect_gpus())


# AVX-512 BF16 (Cooper Lake, Zen 4 and later) or AMX (Sapphire Rapids and later): torch's bfloat16 matmuls
# run natively there; elsewhere they are emulated and slower than float32.
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def parse_native_bf16(cpuinfo: str) -> bool | None:
    """Whether /proc/cpuinfo text shows native bfloat16; None without an x86 `flags` line (unknown)."""
    found = None
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "flags":
            if BF16_FLAGS & set(value.split()):
                return True
            found = False
    return found


def detect_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool | None:
    try:
        return parse_native_bf16(cpuinfo.read_text(errors="replace"))
    except OSError:
        return None  # not Linux


def memory() -> tuple[int, int]:
    vm = psutil.virtual_memory()
    return vm.total, vm.available


def probe() -> MachineInfo:
    """Everything at once (runs nvidia-smi: call from a worker)."""
    total, available = memory()
    return MachineInfo(
        cpus=cpu_count(),
        memory_total=total,
        memory_available=available,
        gpus=detect_gpus(),
        native_bf16=detect_native_bf16(),
    )


def format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit in ("B", "KB", "MB") else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"
