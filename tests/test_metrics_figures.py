"""Ray's Prometheus text, as captured from a real cluster (tests/fixtures/ray_metrics_*.txt: the lines we read,
cut as serving/cluster/prometheus_figures.py cuts them), into each deployment's figures; and the table
`gradio-serve status` prints from them. Fast: no Ray."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from serving.cluster.prometheus_figures import Sample, figures, parse_line, quantile, wanted_lines
from serving.core.metrics_table import metrics_lines, watch
from serving.core.protocol import DeploymentFigures, MetricsEvent, ReplicaFigures, parse_event

FIXTURES = Path(__file__).parent / "fixtures"
APP = "gradio-serve"


def sample(name: str, at: float) -> Sample:
    return Sample.parse([(FIXTURES / name).read_text()], at, APP)


def test_a_fanout_under_load_between_two_readings():
    """Two readings 20 s apart around 10 s of 4 clients on a fan-out of two tiny models."""
    before, after = sample("ray_metrics_fanout_before.txt", 0), sample("ray_metrics_fanout_after.txt", 20)
    figs = figures(after, before)
    assert set(figs) == {"GradioIngress", "model0", "model1"}
    # What the captured text holds, worked out from its counters and histograms.
    expected = {"model0": (115.0, 1.98, 589.3, 958.9), "model1": (116.15, 2.0, 1477.3, 1947.7)}
    for model, (tokens, batch, p50, p95) in expected.items():
        f = figs[model]
        assert f.requests_per_s == pytest.approx(1.15, abs=0.01)  # 23 prompts each in 20 s
        assert f.tokens_per_s == pytest.approx(tokens, abs=0.01)
        assert f.batch_size == pytest.approx(batch, abs=0.01)  # 4 clients: about 2 prompts per batch
        assert (f.p50_ms, f.p95_ms) == pytest.approx((p50, p95), abs=0.1)
        assert f.errors == 0 and f.in_flight == 0
    ingress = figs["GradioIngress"]
    assert ingress.requests_per_s > figs["model0"].requests_per_s  # the page's own requests too
    assert ingress.tokens_per_s is None and ingress.batch_size is None  # not a model


def test_the_app_s_errors_are_counted_and_one_reading_gives_levels_only():
    now = sample("ray_metrics_app_with_errors.txt", 10)
    only = figures(now, None)["app"]
    assert only.errors == 3  # three gr.Error raised by the endpoint (Gradio answered them with 200)
    assert only.requests_per_s == 0 and only.p50_ms is None  # no rate from one reading
    since_start = figures(now, Sample(0))["app"]  # every series is new: all of it in the window
    assert since_start.requests_per_s > 0 and since_start.errors_per_s == pytest.approx(0.3)
    assert 0 < since_start.p50_ms <= since_start.p95_ms


def test_other_applications_are_left_out():
    assert Sample.parse([(FIXTURES / "ray_metrics_app_with_errors.txt").read_text()], 0, "another").values == {}


def test_a_counter_that_restarted_counts_from_its_restart():
    key = ("ray_serve_deployment_request_counter_total", (("deployment", "app"), ("replica", "a")))
    before, after = Sample(0, {key: 100.0}), Sample(10, {key: 20.0})
    assert figures(after, before)["app"].requests_per_s == 2.0


def test_parse_line_and_quantiles():
    line = ('ray_serve_deployment_processing_latency_ms_bucket{application="x",deployment="app",'
            'le="+Inf",route="/a}b",WorkerId="w"} 7.0')
    assert parse_line(line) == ("ray_serve_deployment_processing_latency_ms_bucket",
                                {"application": "x", "deployment": "app", "le": "+Inf", "route": "/a}b"}, 7.0)
    assert parse_line("process_open_fds 12") == ("process_open_fds", {}, 12.0)
    assert parse_line("garbage{") is None
    assert wanted_lines("# HELP x\nprocess_open_fds 1\n") == "\n"
    # 10 at or below 10 ms, 10 more by 20 ms: the median is at 10 ms, p95 inside the second bucket.
    assert quantile({10.0: 10, 20.0: 20, float("inf"): 20}, 0.5) == 10.0
    assert quantile({10.0: 10, 20.0: 20, float("inf"): 20}, 0.95) == 19.0
    assert quantile({10.0: 0, float("inf"): 4}, 0.5) == 10.0  # past the last bound: that bound
    assert quantile({}, 0.5) is None


def test_the_event_and_the_table():
    event = MetricsEvent(window_s=10, deployments=[
        DeploymentFigures(name="model0", label="tiny", requests_per_s=1.5, p50_ms=500, p95_ms=900, errors=2,
                          replicas=1, tokens_per_s=115.0, batch_size=2.0,
                          processes=[ReplicaFigures(pid=42, cpu_percent=97.5, memory_bytes=500_000_000)])])
    assert parse_event(event.model_dump(mode="json")) == event
    lines = metrics_lines(event, now=event.time)
    assert lines[1].split() == ["DEPLOYMENT", "REPLICAS", "REQ/S", "P50", "MS", "P95", "MS", "IN", "FLIGHT",
                                "QUEUED", "ERRORS", "TOK/S", "BATCH"]
    assert lines[2].split() == ["model0", "1", "1.50", "500.0", "900.0", "0", "0", "2", "115.0", "2.0"]
    assert "pid 42" in lines[3] and "97.5%" in lines[3] and "500.0 MB" in lines[3]
    assert "no figures yet" in metrics_lines(None)[0]


def test_watch_redraws_until_nothing_runs():
    out, calls = io.StringIO(), []

    def show() -> int:
        calls.append(1)
        print(f"round {len(calls)}")
        return 3 if len(calls) == 2 else 0

    assert watch(show, out=out, refresh_s=0) == 3
    assert out.getvalue() == "round 1\n\nround 2\n\n"
