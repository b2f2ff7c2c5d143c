"""The cluster's machines as text, for `gradio-serve status` and the launcher's status panel: one line per
machine (address, CPUs, GPUs, memory, the replicas on it), and how another machine joins."""

from __future__ import annotations

from collections import Counter

from serving.core.protocol import DeploymentStatus, Machine


def machine_line(machine: Machine, labels: dict[str, str] | None = None) -> str:
    """`10.77.1.1 (head): 4 CPUs, 1 GPU, 31.2 GB; Your app ×2, tiny ×1` (labels: deployment -> its label)."""
    labels = labels or {}
    what = [f"{machine.cpus:g} CPU{'s' * (machine.cpus != 1)}", f"{machine.gpus:g} GPU{'s' * (machine.gpus != 1)}",
            f"{machine.memory_bytes / 2**30:.1f} GB"]
    counts = Counter(labels.get(r.deployment) or r.deployment for r in machine.replicas)
    replicas = ", ".join(f"{name} ×{n}" for name, n in counts.items()) or "no replicas"
    return f"{machine.address}{' (head)' * machine.head}: {', '.join(what)}; {replicas}"


def machines_lines(machines: list[Machine], deployments: list[DeploymentStatus] = (),
                   join_command: str | None = None, token_file: str | None = None) -> list[str]:
    """The machines, one line each, when there is more than one; how another joins, when it may."""
    labels = {d.name: d.label or d.model or d.name for d in deployments}
    lines = [machine_line(m, labels) for m in machines] if len(machines) > 1 else []
    if join_command:
        lines.append(f"another machine joins with `{join_command}`"
                     + (f" (copy {token_file} there first: it is secret)" if token_file else ""))
    return lines
