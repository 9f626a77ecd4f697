"""OTLP exporters of :class:`telemetry.records.Record` batches (HTTP/protobuf or gRPC), loaded only when
tracing is on. Any error fails the batch (no retry): the processor drops and counts it, never blocking
requests (:mod:`telemetry.export`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from telemetry.otlp_send import grpc_channel, grpc_metadata, post_protobuf
from telemetry.records import encode
from telemetry.settings import TracingSettings

__all__ = ["make_record_exporter"]


class _HttpExporter(SpanExporter):
    """OTLP/HTTP: one POST of ``application/x-protobuf`` per batch; any error is a failure (no retry: the
    batch is dropped and counted by the processor, which never blocks the requests)."""

    def __init__(
        self, url: str, headers: Mapping[str, str], timeout: float, resource: Mapping[str, str]
    ) -> None:
        self.url = url
        self.headers = headers
        self.timeout = timeout
        self.resource = resource

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        if post_protobuf(self.url, encode(spans, self.resource), self.headers, self.timeout):
            return SpanExportResult.SUCCESS
        return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        return None


class _GrpcExporter(SpanExporter):
    """OTLP/gRPC: the TraceService ``Export`` call per batch, with the same failure rule."""

    def __init__(self, settings: TracingSettings, resource: Mapping[str, str]) -> None:
        import grpc  # type: ignore[import-untyped]  # noqa: PLC0415 (only with protocol grpc)
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import (  # noqa: PLC0415
            TraceServiceStub,
        )

        self.channel = grpc_channel(settings)
        self.stub = TraceServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.metadata = grpc_metadata(settings)
        self.timeout = settings.export_timeout_seconds
        self.resource = resource
        self.error = grpc.RpcError

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        request = ExportTraceServiceRequest.FromString(encode(spans, self.resource))
        try:
            self.stub.Export(request, metadata=self.metadata, timeout=self.timeout)
        except self.error:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.channel.close()


def make_record_exporter(settings: TracingSettings) -> SpanExporter:
    """The exporter of :class:`Record` batches for ``settings.protocol``."""
    if settings.protocol == "grpc":
        return _GrpcExporter(settings, settings.resource)
    return _HttpExporter(
        settings.traces_url, settings.headers, settings.export_timeout_seconds, settings.resource
    )
