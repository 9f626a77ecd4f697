"""Light span records for the data plane's hot path, and their OTLP export (HTTP/protobuf or gRPC).

The OpenTelemetry SDK's span objects cost about 120 us each to create on a loaded 2-core machine (locks,
attribute validation, a copy on end) and its OTLP encoder about 170 us per span: more than the proxy's
whole request (docs/benchmarks.md). A proxy request needs two spans with a handful of string attributes,
so the data plane records them as :class:`Record` (a slotted object, W3C ids as integers) and encodes
batches straight into ``opentelemetry-proto`` messages in the export thread. The wire format is OTLP,
the same any collector reads; the operator, whose spans are rare, uses the SDK
(:func:`telemetry.start_tracing`). This module imports neither the SDK nor protobuf: with tracing off the
data plane loads nothing more (the exporters are in :mod:`telemetry.record_export`).
"""

from __future__ import annotations

import functools
import random
import struct
import time
from collections.abc import Mapping, Sequence

__all__ = [
    "CLIENT",
    "SERVER",
    "Record",
    "encode",
    "new_id",
    "parse_traceparent",
    "sampled_root",
]

_SMALL = [bytes((n,)) for n in range(0x80)]
SERVER, CLIENT = 2, 3
"""OTLP's ``Span.SpanKind`` values."""
_MASK64 = (1 << 64) - 1


def new_id(bits: int) -> int:
    """A random non-zero trace (128 bits) or span (64 bits) id."""
    return random.getrandbits(bits) or 1


class Record:
    """One span: ids, name, kind, times (ns since the epoch), attributes, error status."""

    __slots__ = (
        "attributes",
        "end",
        "error",
        "kind",
        "name",
        "parent_id",
        "sampled",
        "span_id",
        "start",
        "trace_id",
        "tracestate",
    )

    def __init__(  # noqa: PLR0917 - built on the hot path: positional is cheapest
        self, trace_id: int, parent_id: int, sampled: bool, tracestate: str, name: str, kind: int
    ) -> None:
        self.trace_id = trace_id
        self.span_id = new_id(64)
        self.parent_id = parent_id
        self.sampled = sampled
        self.tracestate = tracestate
        self.name = name
        self.kind = kind
        self.start = time.time_ns()
        self.end = 0
        self.attributes: dict[str, str] = {}
        self.error: str | None = None

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id:032x}-{self.span_id:016x}-{'01' if self.sampled else '00'}"


def parse_traceparent(value: str) -> tuple[int, int, bool] | None:
    """``(trace id, parent span id, sampled)`` of a W3C ``traceparent``, None when it is not valid."""
    parts = value.strip().split("-")
    if len(parts) < 4 or len(parts[0]) != 2 or parts[0] == "ff" or len(parts[1]) != 32 or len(parts[2]) != 16:
        return None
    try:
        trace_id, span_id, flags = int(parts[1], 16), int(parts[2], 16), int(parts[3][:2], 16)
    except ValueError:
        return None
    if not trace_id or not span_id or (parts[0] == "00" and len(parts) != 4):
        return None
    return trace_id, span_id, bool(flags & 1)


def _varint(value: int) -> bytes:
    if value < 0x80:
        return _SMALL[value]
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (strings, bytes, messages)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _text(number: int, value: str) -> bytes:
    return _field(number, value.encode())


def _key_value(key: str, value: str) -> bytes:
    """``KeyValue{key, value: AnyValue{string_value}}``."""
    return _text(1, key) + _field(2, _text(1, value))


@functools.lru_cache(maxsize=4096)
def _attribute(key: str, value: str) -> bytes:
    """A span's attribute field, encoded once per distinct pair (methods, tools and outcomes repeat)."""
    return _field(9, _key_value(key, value))


def _span(record: Record) -> bytes:
    """``opentelemetry.proto.trace.v1.Span``, written field by field with the attribute fields cached
    (building the generated classes costs about 50 us per span with five attributes, most of it the
    attribute messages). tests/support/otlp.py decodes what this writes with the generated classes."""
    out = [
        _field(1, record.trace_id.to_bytes(16, "big")),
        _field(2, record.span_id.to_bytes(8, "big")),
    ]
    if record.tracestate:
        out.append(_text(3, record.tracestate))
    if record.parent_id:
        out.append(_field(4, record.parent_id.to_bytes(8, "big")))
    out.append(_text(5, record.name))
    out.append(b"\x30" + _varint(record.kind))  # field 6, varint
    out.append(b"\x39" + struct.pack("<Q", record.start))  # field 7, fixed64
    out.append(b"\x41" + struct.pack("<Q", record.end))  # field 8, fixed64
    out += [_attribute(k, v) for k, v in record.attributes.items()]
    if record.error is not None:  # Status{message = 2, code = 3 (STATUS_CODE_ERROR = 2)}
        out.append(_field(15, _text(2, record.error) + b"\x18\x02"))
    return b"".join(out)


def encode(records: Sequence[Record], resource: Mapping[str, str]) -> bytes:
    """One serialised ``ExportTraceServiceRequest`` with ``records`` under ``resource``."""
    resource_message = b"".join(_field(1, _key_value(k, v)) for k, v in resource.items())
    scope_spans = _field(1, _text(1, "mcp-operator")) + b"".join(_field(2, _span(r)) for r in records)
    resource_spans = _field(1, resource_message) + _field(2, scope_spans)
    return _field(1, resource_spans)


def sampled_root(trace_id: int, threshold: int) -> bool:
    """OpenTelemetry's TraceIdRatioBased decision: the trace id's low 64 bits under the ratio's bound."""
    return (trace_id & _MASK64) < threshold
