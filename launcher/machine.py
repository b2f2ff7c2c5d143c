"""This machine's CPUs, GPUs, memory and native bfloat16, for the window: serving/core/machine.py's
probe (one set of rules for the window, the CLI and the supervisor), re-exported so the
window and the tests keep one module to read (and patch) it through."""

from serving.core.machine import (  # noqa: F401 - re-exported
    BF16_FLAGS,
    MachineInfo,
    cpu_count,
    detect_gpus,
    detect_native_bf16,
    format_bytes,
    gpu_count,
    memory,
    parse_native_bf16,
    probe,
)
