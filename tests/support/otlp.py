"""A real OTLP receiver in the test process: OTLP/HTTP (protobuf) and OTLP/gRPC trace and metrics endpoints
that decode what the exporters send with the official ``opentelemetry-proto`` package.

``status`` makes the HTTP endpoint answer an error (e.g. 500) to test the exporter's fault handling.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric

from tests.support.processes import free_port


def otlp_env(endpoint: str, **extra: str) -> dict[str, str]:
    """The environment that sends a process's spans to ``endpoint``, every trace sampled."""
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_TRACES_SAMPLER_ARG": "1", **extra}


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    status_code: int


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


@dataclass
class Receiver:
    """Spans received so far (thread-safe), and the HTTP status the HTTP endpoint answers."""

    status: int = 200
    spans: list[ReceivedSpan] = field(default_factory=list)
    requests: int = 0
    metrics: list[tuple[str, Metric]] = field(default_factory=list)
    """``(service.name, metric)`` in the order received (cumulative: the last of a name is the latest)."""
    metric_resources: list[dict[str, Any]] = field(default_factory=list)
    """The resource attributes of each metrics export."""
    metric_headers: list[dict[str, str]] = field(default_factory=list)
    """The HTTP headers of each OTLP/HTTP metrics export (lower-case names)."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take_metrics(self, request: metrics_service_pb2.ExportMetricsServiceRequest) -> None:
        received = []
        for resource_metrics in request.resource_metrics:
            resource = {a.key: _value(a.value) for a in resource_metrics.resource.attributes}
            for scope_metrics in resource_metrics.scope_metrics:
                received += [(str(resource.get("service.name")), m) for m in scope_metrics.metrics]
            with self.lock:
                self.metric_resources.append(resource)
        with self.lock:
            self.metrics.extend(received)

    def latest(self, service: str, name: str) -> Metric | None:
        """The last ``name`` metric ``service`` sent, if any."""
        with self.lock:
            found = [m for s, m in self.metrics if s == service and m.name == name]
        return found[-1] if found else None

    def take(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        received = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(
                        ReceivedSpan(
                            service=str(resource.get("service.name")),
                            name=span.name,
                            kind=span.kind,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            attributes={a.key: _value(a.value) for a in span.attributes},
                            status_code=span.status.code,
                        )
                    )
        with self.lock:
            self.requests += 1
            self.spans.extend(received)

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        with self.lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def wait(self, predicate: Any, timeout: float = 30.0) -> list[ReceivedSpan]:
        """Until ``predicate(spans)`` is true; the spans then (fails with what arrived)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                spans = list(self.spans)
            if predicate(spans):
                return spans
            if time.monotonic() > deadline:
                summary = [(s.service, s.name, s.trace_id[:8]) for s in spans]
                raise AssertionError(f"spans expected within {timeout}s did not arrive; got {summary}")
            time.sleep(0.2)


@contextmanager
def http_receiver() -> Iterator[tuple[Receiver, str]]:
    """An OTLP/HTTP receiver on loopback: (receiver, base endpoint URL)."""
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            if self.path not in ("/v1/traces", "/v1/metrics"):
                self.send_response(404)
            elif receiver.status != 200:
                self.send_response(receiver.status)
            elif self.path == "/v1/metrics":
                with receiver.lock:
                    receiver.metric_headers.append({k.lower(): v for k, v in self.headers.items()})
                receiver.take_metrics(metrics_service_pb2.ExportMetricsServiceRequest.FromString(body))
                self.send_response(200)
            else:
                receiver.take(trace_service_pb2.ExportTraceServiceRequest.FromString(body))
                self.send_response(200)
            reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield receiver, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def grpc_receiver() -> Iterator[tuple[Receiver, str]]:
    """An OTLP/gRPC receiver on loopback (plain text): (receiver, endpoint URL)."""
    receiver = Receiver()

    class Service(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:
            receiver.take(request)
            return trace_service_pb2.ExportTraceServiceResponse()

    class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:
            receiver.take_metrics(request)
            return metrics_service_pb2.ExportMetricsServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Service(), server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    try:
        yield receiver, f"http://127.0.0.1:{port}"
    finally:
        server.stop(grace=None)
