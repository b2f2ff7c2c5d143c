"""The supervisor's reading of what the app is doing: every PERIOD_S, on a thread of its own, each
node's Prometheus page (Ray's metrics agent, on loopback in a cluster we start) turned into each
deployment's figures (serving/cluster/prometheus_figures.py), plus each replica's CPU and memory
(psutil, for the replicas of a cluster we started: they are our descendants). Said as a `metrics` event
(serving/core/protocol.py) and kept in the record metrics.json, which `gradio-serve status` reads.

Off the hot path: a thread that sleeps between readings, one HTTP GET per node with a short timeout,
and only the lines we use are parsed (the GIL is shared with the app's port relay in this process).
"""

from __future__ import annotations

import collections
import threading
import time
import urllib.request
from collections.abc import Callable

from serving.cluster.prometheus_figures import Sample, figures
from serving.core import paths
from serving.core.config import APP_NAME
from serving.core.events import EventWriter
from serving.core.protocol import DeploymentFigures, MetricsEvent, ReplicaFigures

PERIOD_S = 2.0
WINDOW_S = 10.0  # rates and latencies over the last 10 s: Ray's figures arrive every ~2 s, in steps
NODES_EVERY_S = 30.0  # the nodes (and their metrics ports) looked up again
FETCH_TIMEOUT_S = 1.5
REPLICA_TITLE = f"ray::ServeReplica:{APP_NAME}:"

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def metrics_endpoints() -> list[str]:
    """Each live node's Prometheus page, as Ray's GCS knows it."""
    import ray

    return [f"http://{n['NodeManagerAddress']}:{n['MetricsExportPort']}/metrics"
            for n in ray.nodes() if n.get("Alive") and n.get("MetricsExportPort")]


def fetch(url: str) -> str:
    with _NO_PROXY.open(url, timeout=FETCH_TIMEOUT_S) as response:
        return response.read().decode("utf-8", "replace")


class ReplicaProcesses:
    """Our cluster's replica processes by deployment, with their CPU and memory. psutil's cpu_percent
    counts since the previous call on the same Process object, so they are kept between readings."""

    def __init__(self, root_pid: int):
        self.root_pid = root_pid
        self._known: dict[int, object] = {}

    def read(self) -> dict[str, list[ReplicaFigures]]:
        import psutil

        by_deployment: dict[str, list[ReplicaFigures]] = {}
        try:
            children = psutil.Process(self.root_pid).children(recursive=True)
        except psutil.Error:
            return {}
        seen = {}
        for child in children:
            process = self._known.get(child.pid, child)
            try:
                title = process.cmdline()
                if not title or not title[0].startswith(REPLICA_TITLE):
                    continue
                # The title is the actor's, plus ".method" while a call runs.
                deployment = title[0].removeprefix(REPLICA_TITLE).split(".")[0].split()[0]
                with process.oneshot():
                    cpu, rss = process.cpu_percent(None), process.memory_info().rss
            except psutil.Error:
                continue
            seen[child.pid] = process
            by_deployment.setdefault(deployment, []).append(
                ReplicaFigures(pid=child.pid, cpu_percent=round(cpu, 1), memory_bytes=rss))
        self._known = seen
        return by_deployment


class MetricsReader:
    """start() once Ray is up; it ends when `stop` is set (the supervisor's stop, before Ray goes down)."""

    def __init__(self, events: EventWriter, deployments: Callable[[], list[dict]], root_pid: int | None,
                 stop: threading.Event | None = None):
        """deployments: the last status's deployments (name and label, in the order the status shows);
        root_pid: the supervisor's pid when it started the cluster (the replicas are its descendants)."""
        self.events = events
        self.deployments = deployments
        self.processes = ReplicaProcesses(root_pid) if root_pid else None
        self._stop = stop or threading.Event()
        self._thread: threading.Thread | None = None
        self._history: collections.deque[Sample] = collections.deque()
        self._endpoints: list[str] = []
        self._endpoints_at = -NODES_EVERY_S
        self._warned = False

    def start(self) -> MetricsReader:
        self._thread = threading.Thread(target=self._run, name="metrics-reader", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=FETCH_TIMEOUT_S * 2)

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            paths.metrics_record().unlink(missing_ok=True)

    def _loop(self) -> None:
        while not self._stop.wait(PERIOD_S):
            try:
                event = self.read_once()
            except Exception as exc:  # noqa: BLE001 - figures are a view: say it once and keep serving
                if not self._warned and not self._stop.is_set():
                    self._warned = True
                    self.events.emit("log", level="warning", message=f"cannot read Ray's metrics: {exc}")
                continue
            if event is not None and not self._stop.is_set():
                self.events.emit("metrics", **event.as_json())
                paths.write_json_atomic(paths.metrics_record(), {"time": event.time, **event.as_json()})

    def read_once(self) -> MetricsEvent | None:
        started = time.perf_counter()
        now = time.monotonic()
        if now - self._endpoints_at > NODES_EVERY_S or not self._endpoints:
            self._endpoints, self._endpoints_at = metrics_endpoints(), now
        texts = []
        for url in self._endpoints:
            try:
                texts.append(fetch(url))
            except OSError:
                self._endpoints_at = -NODES_EVERY_S  # a node that went: look again next time
        if not texts:
            return None
        sample = Sample.parse(texts, now, APP_NAME)
        self._history.append(sample)
        while len(self._history) > 2 and now - self._history[1].time >= WINDOW_S:
            self._history.popleft()  # keeps the newest sample at least WINDOW_S old as the base
        before = self._history[0] if len(self._history) > 1 else None
        by_name = figures(sample, before)
        processes = self.processes.read() if self.processes else {}
        listed = self.deployments() or [{"name": name} for name in sorted(by_name)]
        out = []
        for d in listed:
            f = by_name.get(d["name"])
            fields = {k: v for k, v in vars(f).items() if k != "replicas"} if f else {"name": d["name"]}
            out.append(DeploymentFigures(
                # Serve's own count of running replicas, as the status says: its health gauge stays at 0 for
                # a replica whose first health check came while it loaded a model.
                **fields, label=d.get("label", ""),
                replicas=d.get("replicas_running", len(f.replicas) if f else 0),
                processes=processes.get(d["name"], [])))
        window = round(now - before.time, 2) if before else 0.0
        return MetricsEvent(window_s=window, deployments=out,
                            read_ms=round((time.perf_counter() - started) * 1000, 1))


def start_metrics(supervisor) -> MetricsReader:
    """The reader of a supervisor (serving/cluster/supervisor.py), from its start until its stop."""
    import os

    return MetricsReader(supervisor.events, lambda: (supervisor._snapshot or {}).get("deployments", []),
                         os.getpid() if supervisor.owns_cluster else None, supervisor.stop_requested).start()
