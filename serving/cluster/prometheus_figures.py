"""Ray's Prometheus text (each node's metrics agent) turned into each deployment's figures.

Pure: text in, numbers out, so a test feeds it text captured from Ray (tests/fixtures/). Counters and
histograms are cumulative per series (one per replica and route); a figure over the last `window_s`
is the difference between two samples, series by series, so a replica that started meanwhile counts
from zero and one that restarted (its counter went down) counts from its new start.

Which of Ray's series (Ray 2.60; Serve records them in each replica and Ray's core worker pushes them to
its node's agent every `metrics_report_interval_ms`):
- ray_serve_deployment_request_counter_total: requests handled, per replica and route;
- ray_serve_deployment_error_counter_total: requests that raised out of the replica;
- ray_serve_deployment_processing_latency_ms: the time each took, a histogram;
- ray_serve_replica_processing_queries: in flight at each replica;
- ray_serve_deployment_queued_queries: waiting in the callers' handles for a replica;
- ray_serve_deployment_replica_healthy: each replica that runs.
And ours, where Ray counts nothing (serving/replica/serve_figures.py): tokens generated, the batch in
use, a Gradio event that raised (Gradio answers it with 200, so Serve never sees it fail).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

REQUESTS = "ray_serve_deployment_request_counter_total"
ERRORS = "ray_serve_deployment_error_counter_total"
LATENCY = "ray_serve_deployment_processing_latency_ms_bucket"
IN_FLIGHT = "ray_serve_replica_processing_queries"
QUEUED = "ray_serve_deployment_queued_queries"
HEALTHY = "ray_serve_deployment_replica_healthy"
TOKENS = "ray_gradio_serve_generated_tokens_total"
BATCH = "ray_gradio_serve_batch_size"
APP_ERRORS = "ray_gradio_serve_app_errors_total"
WANTED = (REQUESTS, ERRORS, LATENCY, IN_FLIGHT, QUEUED, HEALTHY, TOKENS, BATCH, APP_ERRORS)
_COUNTERS = (REQUESTS, ERRORS, LATENCY, TOKENS, APP_ERRORS)

SeriesKey = tuple  # (metric name, sorted label items)


def wanted_lines(text: str) -> str:
    """Only the lines of the series we read: Ray's whole page is ~650 kB (every histogram of every
    process), and parsing all of it holds the GIL for ~0.2 s in the supervisor, where the app's
    port relay also runs. Cut first (a string prefix test per line), then parse."""
    return "\n".join(line for line in text.splitlines() if line.startswith(WANTED)) + "\n"


@dataclass
class Sample:
    """One reading of every node's series, at `time` (seconds, monotonic)."""

    time: float
    values: dict[SeriesKey, float] = field(default_factory=dict)

    @classmethod
    def parse(cls, texts: Iterable[str], time: float, app: str) -> Sample:
        """`texts`: each node's page; only series of application `app` are kept (the series of every
        replica of a deployment on every node are told apart by their replica label)."""
        sample = cls(time)
        for text in texts:
            for line in wanted_lines(text).splitlines():
                parsed = parse_line(line)
                if parsed is None:
                    continue
                name, labels, value = parsed
                if name not in WANTED or labels.pop("application", app) != app:
                    continue
                key = (name, tuple(sorted(labels.items())))
                sample.values[key] = sample.values.get(key, 0.0) + value
        return sample


# The labels that tell series apart for us; the rest (WorkerId, SessionName...) only repeat them.
_KEPT_LABELS = frozenset(("application", "deployment", "replica", "route", "le", "exception_type", "handle",
                          "actor_id"))
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_line(line: str) -> tuple[str, dict[str, str], float] | None:
    """One sample line of Prometheus' text format: name, the labels we keep, value. A lean parser: the
    lines are Ray's own, and prometheus_client's parser took 4x as long (~35 ms a reading here)."""
    name, brace, rest = line.partition("{")
    if brace:
        labels_text, _, tail = rest.rpartition("}")
        labels = {k: v for k, v in _LABEL.findall(labels_text) if k in _KEPT_LABELS}
    else:
        name, _, tail = line.partition(" ")
        labels = {}
    try:
        return name.strip(), labels, float(tail.split()[0])
    except (IndexError, ValueError):
        return None


@dataclass
class Figures:
    """One deployment's figures over the window."""

    name: str
    requests_per_s: float = 0.0
    p50_ms: float | None = None
    p95_ms: float | None = None
    in_flight: int = 0
    queued: int = 0
    errors: int = 0  # since the replicas started
    errors_per_s: float = 0.0
    replicas: list[str] = field(default_factory=list)  # Serve's replica ids
    tokens_per_s: float | None = None  # models only
    batch_size: float | None = None  # models only: the mean over replicas of the batch in use


def _label(key: SeriesKey, name: str) -> str | None:
    return dict(key[1]).get(name)


def _delta(now: Sample, before: Sample | None, key: SeriesKey) -> float:
    value = now.values[key]
    if before is None:
        return 0.0
    old = before.values.get(key)
    if old is None:
        return value  # a series born in the window (a new replica, a first request on a route)
    return value - old if value >= old else value  # a counter that went down restarted


def figures(now: Sample, before: Sample | None) -> dict[str, Figures]:
    """Each deployment's figures between two samples (`before` None: only the levels and totals)."""
    window = (now.time - before.time) if before is not None else 0.0
    out: dict[str, Figures] = {}
    buckets: dict[str, dict[float, float]] = {}
    tokens: dict[str, float] = {}
    batches: dict[str, list[float]] = {}

    def fig(deployment: str) -> Figures:
        return out.setdefault(deployment, Figures(deployment))

    for key, value in now.values.items():
        name, deployment = key[0], _label(key, "deployment")
        if deployment is None:
            continue
        f = fig(deployment)
        delta = _delta(now, before, key) if name in _COUNTERS else 0.0
        if name == REQUESTS:
            f.requests_per_s += delta
        elif name in (ERRORS, APP_ERRORS):
            f.errors += int(value)
            f.errors_per_s += delta
        elif name == LATENCY:
            le = float(_label(key, "le") or "inf")
            by_le = buckets.setdefault(deployment, {})
            by_le[le] = by_le.get(le, 0.0) + delta
        elif name == IN_FLIGHT:
            f.in_flight += int(value)
        elif name == QUEUED:
            f.queued += int(value)
        elif name == HEALTHY and value >= 1:
            f.replicas.append(_label(key, "replica") or "?")
        elif name == TOKENS:
            tokens[deployment] = tokens.get(deployment, 0.0) + delta
        elif name == BATCH:
            batches.setdefault(deployment, []).append(value)
    for deployment, f in out.items():
        if window > 0:
            f.requests_per_s = round(f.requests_per_s / window, 3)
            f.errors_per_s = round(f.errors_per_s / window, 3)
            if deployment in tokens:
                f.tokens_per_s = round(tokens[deployment] / window, 2)
        else:
            f.requests_per_s = f.errors_per_s = 0.0
        if deployment in batches and not tokens.get(deployment) and before is not None:
            f.batch_size = 0.0  # nothing generated in the window: a generate() batch's gauge keeps its last
        elif deployment in batches:
            f.batch_size = round(sum(batches[deployment]) / len(batches[deployment]), 2)
        f.p50_ms = quantile(buckets.get(deployment, {}), 0.50)
        f.p95_ms = quantile(buckets.get(deployment, {}), 0.95)
        f.replicas.sort()
    return out


def quantile(by_le: dict[float, float], q: float) -> float | None:
    """The q-quantile of a cumulative histogram ({upper bound: count at or below}), interpolated
    linearly inside its bucket, as Prometheus' histogram_quantile does; None without observations."""
    bounds = sorted(by_le)
    if not bounds or by_le[bounds[-1]] <= 0:
        return None
    total = by_le[bounds[-1]]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = by_le[bound]
        if count >= rank:
            if math.isinf(bound):
                return round(lower_bound, 1)  # past the last finite bucket: its bound is all we know
            inside = count - lower_count
            share = (rank - lower_count) / inside if inside > 0 else 0.0
            return round(lower_bound + (bound - lower_bound) * share, 1)
        lower_bound, lower_count = bound, count
    return round(lower_bound, 1)
