"""The OTLP metrics export: our Prometheus families mapped onto ToolHive's instruments (names, attributes,
counts, histogram buckets), every family also under its own name, and an export that fails dropping and
counting its points with one warning per interval."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gateway.observability import ProxyMetrics
from telemetry.drops import WARN_INTERVAL
from telemetry.metrics import MetricsExport, MetricsExportCollector, Workload, to_otlp
from telemetry.settings import MetricsSettings, metrics_settings_from_env

CUMULATIVE = pb.AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE


def by_name(metrics: list[pb.Metric]) -> dict[str, pb.Metric]:
    names = [m.name for m in metrics]
    assert len(names) == len(set(names)), names
    return {m.name: m for m in metrics}


def attributes(point: pb.NumberDataPoint | pb.HistogramDataPoint) -> dict[str, str]:
    return {a.key: a.value.string_value for a in point.attributes}


def served() -> ProxyMetrics:
    """A proxy's collectors after three tools/call (two ok, one tool error) and one tools/list."""
    metrics = ProxyMetrics()
    metrics.observe("tools/call", "add", "ok", 0.003)
    metrics.observe("tools/call", "add", "ok", 0.02)
    metrics.observe("tools/call", "add", "tool_error", 0.02)
    metrics.observe("tools/list", "", "ok", 0.0007)
    metrics.track_sessions(lambda: 2)
    return metrics


def test_requests_become_toolhive_requests_and_tool_calls_with_its_attributes() -> None:
    metrics = by_name(to_otlp(served().registry.collect(), Workload("fetch", "stdio"), 10, 20))
    requests = metrics["toolhive_mcp_requests"].sum
    assert requests.is_monotonic and requests.aggregation_temporality == CUMULATIVE
    counts = {
        (a["mcp_method"], a["mcp_resource_id"], a["status"], a["outcome"]): p.as_int
        for p in requests.data_points
        for a in [attributes(p)]
    }
    assert counts == {
        ("tools/call", "add", "success", "ok"): 2,
        ("tools/call", "add", "error", "tool_error"): 1,
        ("tools/list", "", "success", "ok"): 1,
    }
    for point in requests.data_points:
        assert attributes(point)["server"] == "fetch"
        assert attributes(point)["transport"] == "stdio"
        assert (point.start_time_unix_nano, point.time_unix_nano) == (10, 20)
    tools = metrics["toolhive_mcp_tool_calls"].sum.data_points
    assert sorted((attributes(p)["tool"], attributes(p)["status"], p.as_int) for p in tools) == [
        ("add", "error", 1),
        ("add", "success", 2),
    ], "only tools/call counts as a tool call"


def test_the_duration_histogram_becomes_toolhive_and_semantic_convention_histograms() -> None:
    metrics = by_name(to_otlp(served().registry.collect(), Workload("fetch", "stdio"), 10, 20))
    for name in ("toolhive_mcp_request_duration", "mcp.server.operation.duration"):
        assert metrics[name].unit == "s"
        assert metrics[name].histogram.aggregation_temporality == CUMULATIVE
    legacy = {
        attributes(p)["mcp_method"]: p for p in metrics["toolhive_mcp_request_duration"].histogram.data_points
    }
    call = legacy["tools/call"]
    assert call.count == 3 and call.sum == pytest.approx(0.043)
    assert len(call.bucket_counts) == len(call.explicit_bounds) + 1, "one overflow bucket"
    assert sum(call.bucket_counts) == 3, "per-bucket counts, not Prometheus' cumulative ones"
    assert call.bucket_counts[list(call.explicit_bounds).index(0.005)] == 1, (
        "0.003 s falls in (0.0025, 0.005]"
    )
    assert call.bucket_counts[list(call.explicit_bounds).index(0.025)] == 2
    semconv = metrics["mcp.server.operation.duration"].histogram.data_points
    assert {attributes(p)["mcp.method.name"] for p in semconv} == {"tools/call", "tools/list"}
    assert attributes(semconv[0])["network.transport"] == "pipe", "ToolHive's value for a stdio backend"
    assert "network.protocol.name" not in attributes(semconv[0])
    http = by_name(to_otlp(served().registry.collect(), Workload("gw", "streamable-http"), 10, 20))
    point = http["mcp.server.operation.duration"].histogram.data_points[0]
    assert attributes(point)["network.transport"] == "tcp"
    assert attributes(point)["network.protocol.name"] == "http"
    assert attributes(point)["jsonrpc.protocol.version"] == "2.0"


def test_sessions_and_backends_become_toolhive_gauges() -> None:
    metrics = by_name(to_otlp(served().registry.collect(), Workload("fetch", "sse"), 10, 20))
    connections = metrics["toolhive_mcp_active_connections"].sum
    assert not connections.is_monotonic, "an up-down counter"
    assert [p.as_int for p in connections.data_points] == [2]

    class Backends(Collector):
        def collect(self) -> Iterator[GaugeMetricFamily]:
            up = GaugeMetricFamily("vmcp_backend_up", "up", labels=["backend"])
            for name, value in (("a", 1.0), ("b", 0.0), ("c", 1.0)):
                up.add_metric([name], value)
            yield up

    registry = CollectorRegistry()
    registry.register(Backends())
    gateway = by_name(to_otlp(registry.collect(), Workload("gw", "streamable-http"), 10, 20))
    assert [p.as_int for p in gateway["toolhive_vmcp_backends_discovered"].gauge.data_points] == [3]
    assert sorted(p.as_double for p in gateway["vmcp_backend_up"].gauge.data_points) == [0.0, 1.0, 1.0]


def test_every_family_is_also_exported_under_its_prometheus_name() -> None:
    collectors = served()
    metrics = by_name(to_otlp(collectors.registry.collect(), Workload("fetch", "stdio"), 10, 20))
    text = generate_latest(collectors.registry).decode()
    for family in collectors.registry.collect():
        assert family.name in metrics, family.name
        assert f"# TYPE {family.name}" in text
    requests = metrics["mcp_proxy_requests"].sum
    assert requests.is_monotonic
    assert sum(p.as_double for p in requests.data_points) == 4
    assert metrics["mcp_proxy_backend_up"].WhichOneof("data") == "gauge"


def test_metrics_settings_follow_the_opentelemetry_variables() -> None:
    assert metrics_settings_from_env({}, "proxy") is None
    base = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
    settings = metrics_settings_from_env(base, "proxy")
    assert settings is not None
    assert settings.metrics_url == "http://collector:4318/v1/metrics"
    assert settings.interval_seconds == 60.0
    assert metrics_settings_from_env({**base, "OTEL_METRICS_EXPORTER": "none"}, "proxy") is None
    own = metrics_settings_from_env(
        {
            **base,
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://metrics:4318/custom",
            "OTEL_METRIC_EXPORT_INTERVAL": "500",
        },
        "proxy",
    )
    assert own is not None
    assert own.metrics_url == "http://metrics:4318/custom"
    assert own.interval_seconds == 0.5
    with pytest.raises(ValueError, match="OTEL_METRICS_EXPORTER: 'prometheus' is not supported"):
        metrics_settings_from_env({**base, "OTEL_METRICS_EXPORTER": "prometheus"}, "proxy")
    with pytest.raises(ValueError, match="OTEL_METRIC_EXPORT_INTERVAL: 'soon' is not a number"):
        metrics_settings_from_env({**base, "OTEL_METRIC_EXPORT_INTERVAL": "soon"}, "proxy")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


SETTINGS = MetricsSettings(
    endpoint="http://collector:4318", service_name="fetch", resource_attributes={"env": "test"}
)


def test_an_export_sends_the_snapshot_under_the_resource_and_counts_its_points() -> None:
    sent: list[ExportMetricsServiceRequest] = []
    collectors = served()
    export = MetricsExport(
        SETTINGS, [collectors.registry], Workload("fetch", "stdio"), send=lambda r: sent.append(r) or True
    )
    collectors.registry.register(MetricsExportCollector(export))
    assert export.export_once()
    (resource_metrics,) = sent[0].resource_metrics
    resource = {a.key: a.value.string_value for a in resource_metrics.resource.attributes}
    assert resource == {"env": "test", "service.name": "fetch"}
    names = {m.name for m in resource_metrics.scope_metrics[0].metrics}
    assert {"toolhive_mcp_requests", "mcp_metrics_points_exported"} <= names
    assert export.exported_points > 0 and export.dropped_points == 0
    assert (
        f"mcp_metrics_points_exported_total {float(export.exported_points)}"
        in generate_latest(collectors.registry).decode()
    )


def test_a_failing_collector_drops_points_and_warns_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    collectors = served()
    export = MetricsExport(
        SETTINGS, [collectors.registry], Workload("fetch", "stdio"), send=lambda r: False, clock=clock
    )
    with caplog.at_level(logging.WARNING, logger="mcp_operator.metrics"):
        for _ in range(3):
            assert not export.export_once()
            export.drops.warn_if_due()
        assert len(caplog.records) == 1
        first = export.dropped_points // 3
        assert f"{first} metric points could not be exported" in caplog.records[0].getMessage()
        clock.now += WARN_INTERVAL
        assert not export.export_once()
        export.drops.warn_if_due()
    assert len(caplog.records) == 2
    assert f"{3 * first} metric points" in caplog.records[1].getMessage(), "the ones since the last warning"
    assert export.exported_points == 0


def test_a_collector_that_raises_fails_the_export_without_ending_it() -> None:
    class Broken(Collector):
        def collect(self) -> Iterator[GaugeMetricFamily]:
            raise RuntimeError("bug")

    registry = CollectorRegistry()
    registry.register(Broken())
    sent: list[ExportMetricsServiceRequest] = []
    export = MetricsExport(
        SETTINGS, [registry], Workload("x", "stdio"), send=lambda r: sent.append(r) or True
    )
    assert not export.export_once()
    assert sent == []


def test_shutdown_sends_the_last_totals_unless_the_collector_was_failing() -> None:
    settings = dataclasses.replace(SETTINGS, interval_seconds=3600.0)
    sent: list[ExportMetricsServiceRequest] = []
    export = MetricsExport(
        settings, [served().registry], Workload("x", "stdio"), send=lambda r: sent.append(r) or True
    ).start()
    export.shutdown()
    assert len(sent) == 1, "a process that stops before its first interval still reports its totals"
    tried: list[ExportMetricsServiceRequest] = []
    failing = MetricsExport(
        settings, [served().registry], Workload("x", "stdio"), send=lambda r: tried.append(r) or False
    ).start()
    assert not failing.export_once()
    failing.shutdown()
    assert len(tried) == 1, "no last attempt at a collector that failed: the pod stops at once"
