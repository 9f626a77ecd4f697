"""The bounded span export: the request's side never blocks, drops are counted by reason, and a failing
collector gives one warning per interval, not one per span or batch."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from prometheus_client import CollectorRegistry

from telemetry import Tracing
from telemetry.export import WARN_INTERVAL, BoundedSpanProcessor


class Exporter(SpanExporter):
    """Answers ``result``; ``gate`` (when set) holds every export until released."""

    def __init__(self, result: SpanExportResult) -> None:
        self.result = result
        self.exported: list[str] = []
        self.gate: threading.Event | None = None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.gate is not None:
            self.gate.wait(10)
        self.exported.extend(s.name for s in spans)
        return self.result

    def shutdown(self) -> None:
        return None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def provider() -> Iterator[TracerProvider]:
    provider = TracerProvider()
    yield provider
    provider.shutdown()


def emit(provider: TracerProvider, count: int) -> None:
    tracer = provider.get_tracer("test")
    for index in range(count):
        with tracer.start_as_current_span(f"span-{index}"):
            pass


def test_spans_are_exported_and_counted(provider: TracerProvider) -> None:
    exporter = Exporter(SpanExportResult.SUCCESS)
    processor = BoundedSpanProcessor(exporter, 100, schedule_delay=0.05)
    provider.add_span_processor(processor)
    emit(provider, 3)
    assert processor.force_flush(5000)
    assert exporter.exported == ["span-0", "span-1", "span-2"]
    registry = CollectorRegistry()
    Tracing(True, None, provider, processor).register(registry)
    assert registry.get_sample_value("mcp_tracing_spans_exported_total") == 3
    assert registry.get_sample_value("mcp_tracing_spans_dropped_total", {"reason": "queue_full"}) == 0


def test_a_full_queue_drops_new_spans_without_blocking(provider: TracerProvider) -> None:
    exporter = Exporter(SpanExportResult.SUCCESS)
    exporter.gate = threading.Event()  # the collector hangs: nothing leaves the queue
    processor = BoundedSpanProcessor(exporter, 5, schedule_delay=0.05)
    provider.add_span_processor(processor)
    emit(provider, 1)
    processor.force_flush(200)  # the thread takes the first span and hangs in export
    emit(provider, 20)
    assert len(processor.queue) == 5
    assert processor.dropped_full == 15
    exporter.gate.set()
    assert processor.force_flush(5000)
    assert exporter.exported == ["span-0"] + [f"span-{i}" for i in range(5)]


def test_a_failing_collector_drops_batches_and_warns_once_per_interval(
    provider: TracerProvider, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    exporter = Exporter(SpanExportResult.FAILURE)
    processor = BoundedSpanProcessor(exporter, 100, clock=clock, schedule_delay=0.05)
    provider.add_span_processor(processor)
    with caplog.at_level(logging.WARNING, logger="mcp_operator.tracing"):
        for _ in range(5):
            emit(provider, 2)
            assert processor.force_flush(5000)
        assert processor.dropped_failed == 10
        assert len(caplog.records) == 1
        assert "2 spans could not be exported" in caplog.records[0].getMessage()
        clock.now += WARN_INTERVAL
        emit(provider, 1)
        assert processor.force_flush(5000)
    assert len(caplog.records) == 2
    assert "9 spans could not be exported" in caplog.records[1].getMessage(), (
        "the ones since the last warning"
    )


def test_an_exporter_that_raises_counts_as_a_failure(provider: TracerProvider) -> None:
    class Raising(Exporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            raise RuntimeError("bug")

    processor = BoundedSpanProcessor(Raising(SpanExportResult.SUCCESS), 100, schedule_delay=0.05)
    provider.add_span_processor(processor)
    emit(provider, 2)
    assert processor.force_flush(5000)
    assert processor.dropped_failed == 2
    assert processor._thread.is_alive()
