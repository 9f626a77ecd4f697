"""The data plane's light spans: W3C context in and out, the sampling decision, and OTLP bytes that the
official opentelemetry-proto classes decode."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway import tracing
from telemetry import Tracing
from telemetry.records import CLIENT, SERVER, Record, encode, parse_traceparent

TRACE, PARENT = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"


class Collected:
    """Stands in for the export processor: what the hooks hand over."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    def offer(self, record: Record) -> None:
        self.records.append(record)


@pytest.fixture
def collected() -> Iterator[Collected]:
    sink = Collected()
    tracing.activate(Tracing(True, None, None, sink), 1.0)  # type: ignore[arg-type]
    yield sink
    tracing.activate(Tracing(), 1.0)


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        (f"00-{TRACE}-{PARENT}-01", (int(TRACE, 16), int(PARENT, 16), True)),
        (f"00-{TRACE}-{PARENT}-00", (int(TRACE, 16), int(PARENT, 16), False)),
        (f"00-{'0' * 32}-{PARENT}-01", None),  # all-zero trace id
        (f"ff-{TRACE}-{PARENT}-01", None),  # forbidden version
        (f"00-{TRACE}-{PARENT}-01-extra", None),  # version 00 has exactly four parts
        ("00-xyz-abc-01", None),
        ("", None),
    ],
)
def test_traceparent_parsing(value: str, parsed: tuple[int, int, bool] | None) -> None:
    assert parse_traceparent(value) == parsed


def test_a_request_continues_the_header_context_and_its_hop_passes_its_own(collected: Collected) -> None:
    scope = {"headers": [(b"traceparent", f"00-{TRACE}-{PARENT}-01".encode()), (b"mcp-session-id", b"s")]}
    came = tracing.incoming(scope, {"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"})
    with tracing.request_span("tools/call", "echo", came):
        with tracing.backend_span("fetch", "tools/call"):
            params = tracing.with_trace_meta({"name": "echo", "_meta": {"progressToken": 1}})
            headers: dict[str, str] = {}
            tracing.inject_headers(headers)
        tracing.record_outcome("error", "boom", backend="fetch")
    hop, request = collected.records
    assert (request.kind, hop.kind) == (SERVER, CLIENT)
    assert request.trace_id == hop.trace_id == int(TRACE, 16), "the header wins over _meta"
    assert request.parent_id == int(PARENT, 16) and hop.parent_id == request.span_id
    assert params["_meta"] == {"progressToken": 1, "traceparent": hop.traceparent}
    assert headers == {"traceparent": hop.traceparent}
    assert request.attributes == {
        "mcp.method.name": "tools/call",
        "gen_ai.tool.name": "echo",
        "mcp.era": "session",
        "mcp.outcome": "error",
        "mcp.backend": "fetch",
    }
    assert request.error == "boom"


@pytest.mark.parametrize(
    ("method", "target", "names"),
    [
        ("prompts/get", "greet", {"gen_ai.prompt.name": "mcp.prompt.name"}),
        ("resources/read", "file:///a", {"mcp.resource.uri": "mcp.resource.id"}),
        ("tools/list", "", {}),
    ],
)
def test_legacy_names_repeat_the_new_ones_only_when_asked(
    method: str, target: str, names: dict[str, str]
) -> None:
    sink = Collected()
    try:
        tracing.activate(Tracing(True, None, None, sink), 1.0, legacy_attributes=True)  # type: ignore[arg-type]
        with tracing.request_span(method, target, None):
            pass
        (record,) = sink.records
        expected = {
            "mcp.method.name": method,
            "mcp.method": method,
            "rpc.system": "jsonrpc",
            "rpc.service": "mcp",
        }
        expected |= {new: target for new in names} | {legacy: target for legacy in names.values()}
        assert record.attributes == expected
    finally:
        tracing.activate(Tracing(), 1.0)


def test_an_unsampled_parent_is_followed_and_passed_on_unsampled(collected: Collected) -> None:
    came = tracing.incoming({"headers": [(b"traceparent", f"00-{TRACE}-{PARENT}-00".encode())]}, None)
    with tracing.request_span("tools/list", "", came):
        params = tracing.with_trace_meta(None)
    assert collected.records == []
    assert params["_meta"]["traceparent"].endswith("-00")


def test_root_sampling_follows_the_ratio() -> None:
    sink = Collected()
    try:
        tracing.activate(Tracing(True, None, None, sink), 0.0)  # type: ignore[arg-type]
        for _ in range(50):
            with tracing.request_span("ping", "", None):
                pass
        assert sink.records == []
        tracing.activate(Tracing(True, None, None, sink), 1.0)  # type: ignore[arg-type]
        with tracing.request_span("ping", "", None):
            pass
        assert len(sink.records) == 1
    finally:
        tracing.activate(Tracing(), 1.0)


def test_the_encoding_is_what_opentelemetry_proto_decodes() -> None:
    record = Record(int(TRACE, 16), int(PARENT, 16), True, "vendor=x", "tools/call echo", SERVER)
    record.end = record.start + 1500
    record.attributes["gen_ai.tool.name"] = "ech\u00f6"
    record.error = "denied"
    decoded = ExportTraceServiceRequest.FromString(encode([record, record], {"service.name": "fetch"}))
    (resource_spans,) = decoded.resource_spans
    assert resource_spans.resource.attributes[0].value.string_value == "fetch"
    (scope_spans,) = resource_spans.scope_spans
    span = scope_spans.spans[1]
    assert (span.trace_id.hex(), span.parent_span_id.hex()) == (TRACE, PARENT)
    assert (span.name, span.kind, span.trace_state) == ("tools/call echo", SERVER, "vendor=x")
    assert span.end_time_unix_nano - span.start_time_unix_nano == 1500
    assert span.attributes[0].value.string_value == "ech\u00f6"
    assert (span.status.code, span.status.message) == (2, "denied")


def test_with_tracing_off_the_hooks_are_never_reached() -> None:
    assert tracing.enabled is False
    assert tracing.start("proxy", env={}).enabled is False
    assert tracing.enabled is False
