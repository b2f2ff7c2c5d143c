"""The cluster's machines for the status (`machines`, serving/core/protocol.py's Machine): each live Ray
node's address, CPUs, GPUs and memory, and which of the app's replicas run there.

Cheap: the nodes come from one GCS call (ray.nodes()) every few seconds; where each replica runs comes
with the status poll's own call to Serve's controller (serving/ray_private/ app_status_and_targets
fills `placements`). A machine that was alive and is gone is said as a warning: Serve starts its
replicas again where there is room. One that joins is said too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from serving.core.events import EventWriter

NODES_EVERY_S = 2.0  # ray.nodes() at most this often; Ray itself notices a dead node in ~3 s
HEAD_RESOURCE = "node:__internal_head__"


def machines_list(nodes: list[dict], placements: list[dict]) -> list[dict]:
    """The live machines (as ray.nodes() lists them), head first, each with the replicas `placements`
    puts there (by node id, else by IP), as Machine's JSON."""
    machines = []
    for node in nodes:
        if not node.get("Alive"):
            continue
        node_id, ip, resources = node.get("NodeID", ""), node.get("NodeManagerAddress", ""), node.get("Resources", {})
        machines.append({
            "address": ip, "node_id": node_id, "head": HEAD_RESOURCE in resources, "alive": True,
            "cpus": float(resources.get("CPU", 0)), "gpus": float(resources.get("GPU", 0)),
            "memory_bytes": int(resources.get("memory", 0)),
            "replicas": [{"deployment": p["deployment"], "replica_id": p.get("replica_id") or "",
                          "state": p.get("state") or ""}
                         for p in placements
                         if (p.get("node_id") == node_id if p.get("node_id") else p.get("node_ip") == ip)],
        })
    return sorted(machines, key=lambda m: (not m["head"], m["address"], m["node_id"]))


@dataclass
class MachineWatch:
    """Kept by the supervisor: `placements` is refilled by each status read; poll() gives the machines."""

    placements: list = field(default_factory=list)
    _nodes: list = field(default_factory=list)
    _read_at: float | None = None
    _alive: dict = field(default_factory=dict)  # node id -> IP of the machines alive at the last read

    def poll(self, events: EventWriter, now: float | None = None) -> list[dict]:
        now = time.monotonic() if now is None else now
        if self._read_at is None or now - self._read_at >= NODES_EVERY_S:
            self._read_at = now
            try:
                import ray

                nodes = ray.nodes()
            except Exception as exc:  # noqa: BLE001 - the status goes on with the last list
                events.emit("log", level="warning", message=f"could not list the cluster's machines: {exc}")
            else:
                self.take(nodes, events)
        return machines_list(self._nodes, self.placements)

    def take(self, nodes: list[dict], events: EventWriter | None) -> None:
        """The nodes just read; machines that went or came are said (not those of the first read)."""
        alive = {n.get("NodeID", ""): n.get("NodeManagerAddress", "") for n in nodes if n.get("Alive")}
        if events is not None and self._nodes:
            for node_id, ip in self._alive.items():
                if node_id not in alive:
                    events.emit("log", level="warning",
                                message=f"machine {ip} left or died: its replicas start again where there is room")
            for machine in machines_list([n for n in nodes if n.get("NodeID") not in self._alive], []):
                events.emit("log", level="info", message=f"machine {machine['address']} joined: "
                            f"{machine['cpus']:g} CPUs, {machine['gpus']:g} GPUs, "
                            f"{machine['memory_bytes'] / 2**30:.1f} GB of memory")
        self._nodes, self._alive = nodes, alive
