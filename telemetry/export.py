"""Span export that can never slow or break the process: a bounded queue drained by one thread.

``on_end`` (on the request's path) appends to a bounded deque and returns; a full queue drops the span
and counts it. The export thread sends batches with the OTLP exporter (HTTP/protobuf or gRPC); a batch
that fails (collector unreachable, wrong port, 5xx after the exporter's own retries within its timeout)
is dropped and counted. Failures are logged at most once per :data:`WARN_INTERVAL` seconds
(:mod:`telemetry.drops`), with the number of spans dropped since the last warning, never once per span or
batch; the exporters' own per-batch error lines are silenced for that reason.

Counts are exported as Prometheus counters by :class:`TracingCollector`: ``mcp_tracing_spans_exported_total``
and ``mcp_tracing_spans_dropped_total{reason}`` (``queue_full`` or ``export_failed``).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from telemetry.drops import WARN_INTERVAL, DropWarning
from telemetry.settings import TracingSettings

__all__ = ["WARN_INTERVAL", "BoundedSpanProcessor", "TracingCollector", "make_exporter"]

logger = logging.getLogger("mcp_operator.tracing")
BATCH_SIZE = 512
SCHEDULE_DELAY = 1.0
"""Seconds the export thread waits for a batch to fill before sending what it has."""
_EXPORTER_LOGGERS = ("opentelemetry.exporter.otlp", "opentelemetry.sdk.trace.export")


class BoundedSpanProcessor(SpanProcessor):
    """See the module docstring. ``clock`` is injectable for the warning interval's tests."""

    def __init__(
        self,
        exporter: SpanExporter,
        max_queue_size: int,
        *,
        endpoint: str = "the collector",
        clock: Callable[[], float] = time.monotonic,
        schedule_delay: float = SCHEDULE_DELAY,
    ) -> None:
        self.exporter = exporter
        self.endpoint = endpoint
        self.max_queue_size = max_queue_size
        self.queue: collections.deque[Any] = collections.deque()
        self.exported = 0
        self.dropped_full = 0
        self.dropped_failed = 0
        self._delay = schedule_delay
        self.drops = DropWarning("tracing", "spans", endpoint, clock=clock)
        self._wake = threading.Event()
        self._stopping = False
        self._idle = threading.Condition()
        self._draining = False
        """Whether the export thread holds a batch (taken from the queue, not yet reported)."""
        self._thread = threading.Thread(target=self._run, name="otel-span-export", daemon=True)
        self._thread.start()

    # -- the request's side: never blocks --------------------------------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        self.offer(span)

    def offer(self, span: Any) -> None:
        """Queue one finished span (an SDK span, or a :class:`telemetry.records.Record`) for export."""
        if len(self.queue) >= self.max_queue_size:
            self.dropped_full += 1
            self.drops.unreported += 1
            return
        self.queue.append(span)
        if len(self.queue) >= BATCH_SIZE:
            self._wake.set()

    # -- the export thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self._delay)
            self._wake.clear()
            self._drain()
        self._drain()

    def _drain(self) -> None:
        self._draining = True
        while self.queue:
            batch = [self.queue.popleft() for _ in range(min(BATCH_SIZE, len(self.queue)))]
            self._export(batch)
        # Before waking force_flush: a flush that returns has its drops reported when a warning is due.
        self.drops.warn_if_due()
        with self._idle:
            self._draining = False
            self._idle.notify_all()

    def _export(self, batch: Sequence[ReadableSpan]) -> None:
        try:
            result = self.exporter.export(batch)
        except Exception as exc:  # an exporter bug must not end the thread
            result = SpanExportResult.FAILURE
            logger.debug("span export raised", exc_info=exc)
        if result is SpanExportResult.SUCCESS:
            self.exported += len(batch)
            return
        self.dropped_failed += len(batch)
        self.drops.unreported += len(batch)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        deadline = time.monotonic() + timeout_millis / 1000
        with self._idle:
            while (self.queue or self._draining) and time.monotonic() < deadline:
                self._wake.set()
                self._idle.wait(min(0.1, max(0.0, deadline - time.monotonic())))
        return not (self.queue or self._draining)

    def shutdown(self) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=5)
        self.exporter.shutdown()


def make_exporter(settings: TracingSettings) -> SpanExporter:
    """The OTLP exporter of ``settings.protocol``; its own per-batch error lines are silenced."""
    for name in _EXPORTER_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    headers = dict(settings.headers)
    if settings.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # noqa: PLC0415 (grpc only when asked)
            OTLPSpanExporter as GrpcExporter,
        )

        target = settings.endpoint.split("://", 1)[1].rstrip("/")
        insecure = settings.insecure or settings.endpoint.startswith("http://")
        return GrpcExporter(
            endpoint=target, insecure=insecure, headers=headers, timeout=settings.export_timeout_seconds
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter as HttpExporter,
    )

    return HttpExporter(
        endpoint=settings.traces_url, headers=headers, timeout=settings.export_timeout_seconds
    )


class TracingCollector(Collector):
    """The processor's counts as Prometheus counters, read at scrape time."""

    def __init__(self, processor: BoundedSpanProcessor) -> None:
        self.processor = processor

    def collect(self) -> Iterator[CounterMetricFamily]:
        exported = CounterMetricFamily("mcp_tracing_spans_exported", "Spans sent to the OTLP collector.")
        exported.add_metric([], float(self.processor.exported))
        dropped = CounterMetricFamily(
            "mcp_tracing_spans_dropped",
            "Spans dropped: the queue was full, or the collector could not take them.",
            labels=["reason"],
        )
        dropped.add_metric(["queue_full"], float(self.processor.dropped_full))
        dropped.add_metric(["export_failed"], float(self.processor.dropped_failed))
        yield from (exported, dropped)
