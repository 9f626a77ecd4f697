"""OTLP metrics of the data plane, read from its Prometheus registries at export time.

The proxy and the gateway count every request once, in their ``prometheus_client`` collectors (the
``/metrics`` endpoint). The OTLP export adds nothing to a request: one thread wakes every
``OTEL_METRIC_EXPORT_INTERVAL``, collects the registries as a scrape would, converts the families to OTLP
(:func:`to_otlp`) and sends one ``ExportMetricsServiceRequest`` (HTTP/protobuf or gRPC). Every family is
exported under its Prometheus name (counters without ``_total``, cumulative from the process's start);
the families ToolHive defines OpenTelemetry instruments for are exported under ToolHive's names as well
(:data:`TOOLHIVE_INSTRUMENTS`), with ToolHive's attributes, so dashboards built for ToolHive's proxy and
vMCP read ours.

The registries are collected on the process's event loop when one is bound (:attr:`MetricsExport.loop`),
as a ``/metrics`` scrape is: collectors that read the application's state (the gateway's backends) never
run beside it in another thread.

Bounded and never blocking: one snapshot at a time, one send with the export timeout and no retry. A
failed send drops that snapshot's points (the next one carries the cumulative totals again), counts them
in ``mcp_metrics_points_dropped_total{reason="export_failed"}`` and logs one warning per interval at most
(:mod:`telemetry.drops`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.samples import Sample

from telemetry.drops import DropWarning
from telemetry.otlp_send import grpc_channel, grpc_metadata, post_protobuf
from telemetry.settings import MetricsSettings

__all__ = [
    "TOOLHIVE_INSTRUMENTS",
    "MetricsExport",
    "MetricsExportCollector",
    "Workload",
    "export_request",
    "to_otlp",
]

logger = logging.getLogger("mcp_operator.metrics")
CUMULATIVE = pb.AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
TOOLHIVE_INSTRUMENTS = {
    "mcp_proxy_requests": ("toolhive_mcp_requests", "toolhive_mcp_tool_calls"),
    "mcp_proxy_request_duration_seconds": ("toolhive_mcp_request_duration", "mcp.server.operation.duration"),
    "mcp_proxy_active_sessions": ("toolhive_mcp_active_connections",),
    "vmcp_backend_up": ("toolhive_vmcp_backends_discovered",),
}
"""Our Prometheus family -> the ToolHive instruments it is also exported as (ToolHive's proxy middleware
``pkg/telemetry/middleware.go`` and vMCP's ``backendtelemetry``)."""
_NETWORK = {"stdio": ("pipe", ""), "sse": ("tcp", "http"), "streamable-http": ("tcp", "http")}
"""ToolHive's ``network.transport`` / ``network.protocol.name`` of a backend transport."""


@dataclass(frozen=True)
class Workload:
    """What ToolHive's instruments say about the process: ``server`` (the workload's name) and
    ``transport`` (the backend's: ``stdio``, ``sse``, ``streamable-http``; the gateway's front is
    ``streamable-http``, as ToolHive's vMCP reports)."""

    server: str
    transport: str


def _attributes(labels: Mapping[str, str]) -> list[KeyValue]:
    return [KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in labels.items()]


def _number(
    labels: Mapping[str, str], value: float, times: tuple[int, int], *, integer: bool
) -> pb.NumberDataPoint:
    point = pb.NumberDataPoint(
        attributes=_attributes(labels), start_time_unix_nano=times[0], time_unix_nano=times[1]
    )
    if integer:
        point.as_int = int(value)
    else:
        point.as_double = value
    return point


@dataclass
class _Histogram:
    """One Prometheus histogram series: cumulative bucket counts by upper bound, count and sum."""

    buckets: dict[float, float]
    count: float = 0.0
    total: float = 0.0

    def point(self, labels: Mapping[str, str], times: tuple[int, int]) -> pb.HistogramDataPoint:
        bounds = sorted(b for b in self.buckets if b != float("inf"))
        cumulative = [self.buckets[b] for b in bounds] + [self.count]
        counts = [int(c - p) for c, p in zip(cumulative, [0.0, *cumulative[:-1]], strict=True)]
        return pb.HistogramDataPoint(
            attributes=_attributes(labels),
            start_time_unix_nano=times[0],
            time_unix_nano=times[1],
            count=int(self.count),
            sum=self.total,
            bucket_counts=counts,
            explicit_bounds=bounds,
        )


def _histograms(samples: Iterable[Sample], name: str) -> dict[tuple[tuple[str, str], ...], _Histogram]:
    series: dict[tuple[tuple[str, str], ...], _Histogram] = {}
    for sample in samples:
        labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
        found = series.setdefault(labels, _Histogram({}))
        if sample.name == f"{name}_bucket":
            found.buckets[float(sample.labels["le"])] = sample.value
        elif sample.name == f"{name}_count":
            found.count = sample.value
        elif sample.name == f"{name}_sum":
            found.total = sample.value
    return series


def _own(family: Metric, times: tuple[int, int]) -> pb.Metric | None:
    """A Prometheus family under its own name (counters: monotonic sums; gauges; histograms)."""
    name, kind, samples = family.name, family.type, family.samples
    metric = pb.Metric(name=name, description=family.documentation)
    if kind == "counter":
        points = [
            _number(s.labels, s.value, times, integer=False) for s in samples if s.name == f"{name}_total"
        ]
        metric.sum.CopyFrom(pb.Sum(data_points=points, aggregation_temporality=CUMULATIVE, is_monotonic=True))
    elif kind in ("gauge", "unknown"):
        points = [_number(s.labels, s.value, times, integer=False) for s in samples if s.name == name]
        metric.gauge.CopyFrom(pb.Gauge(data_points=points))
    elif kind == "histogram":
        series = _histograms(samples, name)
        points_h = [h.point(dict(labels), times) for labels, h in series.items()]
        metric.histogram.CopyFrom(pb.Histogram(data_points=points_h, aggregation_temporality=CUMULATIVE))
    else:  # summaries, info and state sets: none in the data plane's registries
        return None
    return metric


def _status(outcome: str) -> str:
    """ToolHive's ``status`` attribute: ``success`` or ``error``."""
    return "success" if outcome == "ok" else "error"


def _toolhive_requests(samples: list[Sample], workload: Workload, times: tuple[int, int]) -> list[pb.Metric]:
    requests, tools = [], []
    for s in samples:
        if not s.name.endswith("_total"):
            continue
        method, tool, outcome = s.labels["method"], s.labels["tool"], s.labels["outcome"]
        status = _status(outcome)
        labels = {"mcp_method": method, "mcp_resource_id": tool, "status": status, "outcome": outcome}
        labels |= {"server": workload.server, "transport": workload.transport}
        requests.append(_number(labels, s.value, times, integer=True))
        if method == "tools/call" and tool:
            tool_labels = {"server": workload.server, "tool": tool, "status": status, "outcome": outcome}
            tools.append(_number(tool_labels, s.value, times, integer=True))
    return [
        _sum("toolhive_mcp_requests", "Total number of MCP requests", requests, monotonic=True),
        _sum("toolhive_mcp_tool_calls", "Total number of MCP tool calls", tools, monotonic=True),
    ]


def _toolhive_durations(samples: list[Sample], workload: Workload, times: tuple[int, int]) -> list[pb.Metric]:
    series = _histograms(samples, "mcp_proxy_request_duration_seconds")
    network, protocol = _NETWORK.get(workload.transport, ("tcp", "http"))
    legacy, semconv = [], []
    for labels, histogram in series.items():
        method = dict(labels)["method"]
        legacy.append(
            histogram.point(
                {"mcp_method": method, "server": workload.server, "transport": workload.transport}, times
            )
        )
        spec = {"mcp.method.name": method, "jsonrpc.protocol.version": "2.0", "network.transport": network}
        if protocol:
            spec["network.protocol.name"] = protocol
        semconv.append(histogram.point(spec, times))
    return [
        _histogram("toolhive_mcp_request_duration", "Duration of MCP requests in seconds", legacy),
        _histogram("mcp.server.operation.duration", "Duration of MCP server operations", semconv),
    ]


def _toolhive_sessions(samples: list[Sample], workload: Workload, times: tuple[int, int]) -> list[pb.Metric]:
    labels = {"server": workload.server, "transport": workload.transport}
    points = [_number(labels, s.value, times, integer=True) for s in samples]
    return [
        _sum("toolhive_mcp_active_connections", "Number of active MCP connections", points, monotonic=False)
    ]


def _toolhive_backends(samples: list[Sample], workload: Workload, times: tuple[int, int]) -> list[pb.Metric]:
    point = _number({}, float(len(samples)), times, integer=True)
    metric = pb.Metric(name="toolhive_vmcp_backends_discovered", description="Number of backends discovered")
    metric.gauge.CopyFrom(pb.Gauge(data_points=[point]))
    return [metric]


def _sum(name: str, description: str, points: list[pb.NumberDataPoint], *, monotonic: bool) -> pb.Metric:
    metric = pb.Metric(name=name, description=description)
    metric.sum.CopyFrom(
        pb.Sum(data_points=points, aggregation_temporality=CUMULATIVE, is_monotonic=monotonic)
    )
    return metric


def _histogram(name: str, description: str, points: list[pb.HistogramDataPoint]) -> pb.Metric:
    metric = pb.Metric(name=name, description=description, unit="s")
    metric.histogram.CopyFrom(pb.Histogram(data_points=points, aggregation_temporality=CUMULATIVE))
    return metric


_TOOLHIVE: dict[str, Callable[[list[Sample], Workload, tuple[int, int]], list[pb.Metric]]] = {
    "mcp_proxy_requests": _toolhive_requests,
    "mcp_proxy_request_duration_seconds": _toolhive_durations,
    "mcp_proxy_active_sessions": _toolhive_sessions,
    "vmcp_backend_up": _toolhive_backends,
}


def to_otlp(families: Iterable[Metric], workload: Workload, start_ns: int, now_ns: int) -> list[pb.Metric]:
    """The OTLP metrics of ``families`` (``prometheus_client`` metric families, as a registry's
    ``collect()`` yields them): each under its own name, and ToolHive's instruments for the families in
    :data:`TOOLHIVE_INSTRUMENTS`. Pure."""
    times = (start_ns, now_ns)
    metrics: list[pb.Metric] = []
    for family in families:
        own = _own(family, times)
        if own is not None:
            metrics.append(own)
        toolhive = _TOOLHIVE.get(family.name)
        if toolhive is not None:
            metrics += toolhive(list(family.samples), workload, times)
    return metrics


def export_request(metrics: Sequence[pb.Metric], resource: Mapping[str, str]) -> ExportMetricsServiceRequest:
    """One ``ExportMetricsServiceRequest`` with ``metrics`` under ``resource``."""
    return ExportMetricsServiceRequest(
        resource_metrics=[
            pb.ResourceMetrics(
                resource=Resource(attributes=_attributes(resource)),
                scope_metrics=[
                    pb.ScopeMetrics(scope=InstrumentationScope(name="mcp-operator"), metrics=list(metrics))
                ],
            )
        ]
    )


def _points(metrics: Sequence[pb.Metric]) -> int:
    return sum(len(getattr(m, m.WhichOneof("data") or "gauge").data_points) for m in metrics)


def _sender(settings: MetricsSettings) -> Callable[[ExportMetricsServiceRequest], bool]:
    """Sends one request; True when the collector took it (HTTP 2xx, gRPC OK) within the timeout."""
    if settings.protocol == "grpc":
        import grpc  # type: ignore[import-untyped]  # noqa: PLC0415 (only with protocol grpc)
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2_grpc import (  # noqa: PLC0415
            MetricsServiceStub,
        )

        stub = MetricsServiceStub(grpc_channel(settings))  # type: ignore[no-untyped-call]
        metadata = grpc_metadata(settings)

        def send_grpc(request: ExportMetricsServiceRequest) -> bool:
            try:
                stub.Export(request, metadata=metadata, timeout=settings.export_timeout_seconds)
            except grpc.RpcError:
                return False
            return True

        return send_grpc

    def send_http(request: ExportMetricsServiceRequest) -> bool:
        body = request.SerializeToString()
        return post_protobuf(settings.metrics_url, body, settings.headers, settings.export_timeout_seconds)

    return send_http


class MetricsExport:
    """The export thread (see the module docstring). ``send`` replaces the OTLP sender in unit tests."""

    def __init__(
        self,
        settings: MetricsSettings,
        registries: Sequence[CollectorRegistry],
        workload: Workload,
        *,
        send: Callable[[ExportMetricsServiceRequest], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.registries = registries
        self.workload = workload
        self.send = send or _sender(settings)
        self.start_ns = time.time_ns()
        self.exported_points = 0
        self.dropped_points = 0
        self.drops = DropWarning("metrics", "metric points", settings.endpoint, clock=clock)
        self.failing: bool | None = None
        """Whether the last export failed (None before the first)."""
        self.loop: asyncio.AbstractEventLoop | None = None
        """The event loop the registries are collected on while it runs (else this thread)."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="otel-metrics-export", daemon=True)

    def start(self) -> MetricsExport:
        self._thread.start()
        return self

    def export_once(self) -> bool:
        """Collect, convert and send one snapshot; False (and the points counted as dropped) on failure."""
        try:
            families = self._collect()
            metrics = to_otlp(families, self.workload, self.start_ns, time.time_ns())
            request = export_request(metrics, self.settings.resource)
        except Exception as exc:  # a collector's bug must not end the thread
            logger.debug("metrics collection raised", exc_info=exc)
            self.failing = True
            return False
        points = _points(metrics)
        self.failing = not self.send(request)
        if not self.failing:
            self.exported_points += points
            return True
        self.dropped_points += points
        self.drops.unreported += points
        return False

    def _families(self) -> list[Metric]:
        return [family for registry in self.registries for family in registry.collect()]

    def _collect(self) -> list[Metric]:
        loop = self.loop
        if loop is None:
            return self._families()

        async def on_loop() -> list[Metric]:
            return self._families()

        future = asyncio.run_coroutine_threadsafe(on_loop(), loop)
        return future.result(timeout=self.settings.export_timeout_seconds)

    def _run(self) -> None:
        while not self._stop.wait(self.settings.interval_seconds):
            self.export_once()
            self.drops.warn_if_due()

    def shutdown(self) -> None:
        """Stop the thread and send the last totals (one attempt, bounded by the export timeout), unless
        the collector failed the last export: a pod that stops must not wait for a collector that is down."""
        if not self._thread.is_alive():
            return
        self._stop.set()
        self._thread.join(timeout=self.settings.export_timeout_seconds + 1)
        if not self.failing and not self._thread.is_alive():
            self.export_once()


class MetricsExportCollector(Collector):
    """The export's own counts on /metrics (and so in the export too)."""

    def __init__(self, export: MetricsExport) -> None:
        self.export = export

    def collect(self) -> Iterator[CounterMetricFamily]:
        exported = CounterMetricFamily(
            "mcp_metrics_points_exported", "Metric data points sent to the OTLP collector."
        )
        exported.add_metric([], float(self.export.exported_points))
        dropped = CounterMetricFamily(
            "mcp_metrics_points_dropped",
            "Metric data points the OTLP collector could not take (their export failed).",
            labels=["reason"],
        )
        dropped.add_metric(["export_failed"], float(self.export.dropped_points))
        yield from (exported, dropped)
