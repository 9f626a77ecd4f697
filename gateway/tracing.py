"""Spans of the data plane: one SERVER span per front MCP request (proxy SDK path, fast path, gateway) and
one CLIENT span per backend hop, with W3C trace context taken from the front and passed on.

Every hook in the hot path is guarded by the module flag :data:`enabled` (one boolean check when tracing
is off: no span, no context object, no header parsing). The process's CLI turns it on with :func:`start`
when the environment names a collector. Spans are :class:`telemetry.records.Record` objects (the
OpenTelemetry SDK's spans cost more than a proxied request; see that module), exported as OTLP by the
bounded, never-blocking processor of :mod:`telemetry.export`; the SDK's tracer provider is not installed
in the data plane, so the MCP SDK's own spans stay no-ops and never overwrite the context we pass on.

The parent of a front request's span: the ``traceparent`` / ``tracestate`` headers of its HTTP request,
else the ``_meta`` of its params (where MCP carries trace context, SEP-414). A backend hop carries the
hop span's context in both: in the request's ``_meta`` (every transport, stdio included) and, for HTTP
backends, as headers (:func:`inject_headers`, from :mod:`gateway.backends.raw_channel`; the SDK's own
client already injects ``_meta`` on its path).

Span attributes follow the MCP semantic conventions where they exist (``mcp.method.name``,
``gen_ai.tool.name``, ``gen_ai.prompt.name``, ``mcp.resource.uri``, ``mcp.protocol.version``) plus ours:
``mcp.backend`` (the backend's name), ``mcp.era`` (``session`` for 2025-11-25 sessions, ``stateless``
for 2026-07-28) and ``mcp.outcome`` (the label of ``mcp_proxy_requests_total``). With ToolHive's
``useLegacyAttributes`` (:data:`telemetry.settings.LEGACY_ATTRIBUTES_VARIABLE`) a request span also carries
ToolHive's legacy names for the same values (:data:`LEGACY_ATTRIBUTES`), so dashboards built on them keep
working.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from telemetry import Tracing
from telemetry.records import CLIENT, SERVER, Record, new_id, parse_traceparent, sampled_root
from telemetry.settings import settings_from_env

__all__ = [
    "LEGACY_ATTRIBUTES",
    "OFF",
    "Incoming",
    "activate",
    "backend_span",
    "current",
    "enabled",
    "incoming",
    "inject_headers",
    "record_outcome",
    "request_span",
    "start",
    "with_trace_meta",
]

enabled = False
"""Whether tracing is on in this process (set once at start by :func:`activate`)."""
OFF = nullcontext()
"""What a hook enters instead of a span when tracing is off (one shared object: nothing is allocated)."""
_FAILED = frozenset({"error", "denied"})
_TARGET_ATTRIBUTE = {
    "tools/call": "gen_ai.tool.name",
    "prompts/get": "gen_ai.prompt.name",
    "resources/read": "mcp.resource.uri",
}
LEGACY_ATTRIBUTES = {
    "mcp.method.name": "mcp.method",
    "gen_ai.tool.name": "mcp.tool.name",
    "gen_ai.prompt.name": "mcp.prompt.name",
    "mcp.resource.uri": "mcp.resource.id",
}
"""ToolHive's legacy attribute name of each attribute a request span carries that has one."""
_LEGACY_CONSTANT = {"rpc.system": "jsonrpc", "rpc.service": "mcp"}
"""ToolHive's legacy attributes whose value is fixed."""
_legacy = False
"""Whether request spans carry the legacy names too (set once at start by :func:`activate`)."""
_current: ContextVar[Record | None] = ContextVar("mcp_operator_span", default=None)
_threshold = 1 << 64
"""Root spans are sampled when their trace id's low 64 bits are under this (OTel's ratio sampler)."""
_sink: Callable[[Record], None] = lambda record: None  # noqa: E731 - replaced by activate()


def activate(tracing: Tracing, sampling_rate: float = 1.0, *, legacy_attributes: bool = False) -> None:
    """Turn the data plane's spans on when ``tracing`` is, sending finished spans to its processor."""
    global enabled, _threshold, _sink, _legacy  # noqa: PLW0603 - one switch per process, read by every hook
    enabled = tracing.enabled and tracing.processor is not None
    _threshold = int(sampling_rate * (1 << 64))
    _legacy = legacy_attributes
    if tracing.processor is not None:
        _sink = tracing.processor.offer


def start(default_service_name: str, env: Mapping[str, str] | None = None) -> Tracing:
    """Tracing as the environment asks (:mod:`telemetry.settings`), activated for the data plane's hooks;
    raises ``ValueError`` naming the variable that is wrong."""
    settings = settings_from_env(os.environ if env is None else env, default_service_name)
    if settings is None:
        return Tracing()
    from telemetry.export import BoundedSpanProcessor  # noqa: PLC0415 - the SDK only when tracing is on
    from telemetry.record_export import make_record_exporter  # noqa: PLC0415

    exporter = make_record_exporter(settings)
    processor = BoundedSpanProcessor(exporter, settings.max_queue_size, endpoint=settings.endpoint)
    tracing = Tracing(True, settings, None, processor)
    activate(tracing, settings.sampling_rate, legacy_attributes=settings.legacy_attributes)
    return tracing


@dataclass(frozen=True, slots=True)
class Incoming:
    """What a front request says about its trace: the parent (trace id, span id, sampled), its
    ``tracestate``, and the protocol version and era."""

    parent: tuple[int, int, bool] | None
    tracestate: str
    protocol_version: str | None
    era: str


def incoming(scope: object, meta: object) -> Incoming:
    """The trace context of a front request from its ASGI ``scope`` (headers) or its params' ``_meta``."""
    traceparent = tracestate = version = None
    session = False
    headers = scope.get("headers") if isinstance(scope, dict) else None
    for key, value in headers or ():
        if key == b"traceparent":
            traceparent = value.decode("latin-1")
        elif key == b"tracestate":
            tracestate = value.decode("latin-1")
        elif key == b"mcp-protocol-version":
            version = value.decode("latin-1")
        elif key == b"mcp-session-id":
            session = True
    if traceparent is None and isinstance(meta, Mapping) and isinstance(meta.get("traceparent"), str):
        traceparent, tracestate = meta["traceparent"], meta.get("tracestate")
    parent = parse_traceparent(traceparent) if traceparent else None
    state = tracestate if parent is not None and isinstance(tracestate, str) else ""
    return Incoming(parent, state, version, "session" if session else "stateless")


def current() -> Record | None:
    """The span of the request (or backend hop) running in this task, if any."""
    return _current.get()


def _child(name: str, kind: int, parent: tuple[int, int, bool] | None, tracestate: str) -> Record:
    if parent is not None:
        return Record(parent[0], parent[1], parent[2], tracestate, name, kind)
    trace_id = new_id(128)
    return Record(trace_id, 0, sampled_root(trace_id, _threshold), "", name, kind)


@contextmanager
def _running(record: Record) -> Iterator[Record]:
    token = _current.set(record)
    try:
        yield record
    finally:
        _current.reset(token)
        record.end = time.time_ns()
        if record.sampled:
            _sink(record)


def request_span(method: str, target: str, came: Incoming | None) -> Any:
    """The SERVER span of one front request, current while it runs (its backend hop nests in it)."""
    outer = _current.get()
    if came is not None and came.parent is not None:
        record = _child(f"{method} {target}" if target else method, SERVER, came.parent, came.tracestate)
    elif outer is not None:
        parent = (outer.trace_id, outer.span_id, outer.sampled)
        record = _child(f"{method} {target}" if target else method, SERVER, parent, outer.tracestate)
    else:
        record = _child(f"{method} {target}" if target else method, SERVER, None, "")
    attributes = record.attributes
    attributes["mcp.method.name"] = method
    name_attribute = _TARGET_ATTRIBUTE.get(method)
    if name_attribute is not None and target:
        attributes[name_attribute] = target
    if came is not None:
        attributes["mcp.era"] = came.era
        if came.protocol_version:
            attributes["mcp.protocol.version"] = came.protocol_version
    if _legacy:
        _add_legacy(attributes)
    return _running(record)


def _add_legacy(attributes: dict[str, str]) -> None:
    for name, legacy in LEGACY_ATTRIBUTES.items():
        if name in attributes:
            attributes[legacy] = attributes[name]
    attributes.update(_LEGACY_CONSTANT)


def record_outcome(outcome: str, error: str | None = None, *, backend: str | None = None) -> None:
    """Set the current request span's outcome (and the backend it went to, when known)."""
    record = _current.get()
    if record is None:
        return
    record.attributes["mcp.outcome"] = outcome
    if backend:
        record.attributes["mcp.backend"] = backend
    if outcome in _FAILED:
        record.error = error or outcome


@contextmanager
def backend_span(backend: str, method: str) -> Iterator[None]:
    """The CLIENT span of one backend hop; an exception marks it failed and propagates."""
    outer = _current.get()
    parent = (outer.trace_id, outer.span_id, outer.sampled) if outer is not None else None
    record = _child(f"backend {method}", CLIENT, parent, outer.tracestate if outer is not None else "")
    record.attributes["mcp.method.name"] = method
    record.attributes["mcp.backend"] = backend
    with _running(record):
        try:
            yield
        except BaseException as exc:
            record.error = type(exc).__name__
            raise


def with_trace_meta(params: dict[str, Any] | None) -> dict[str, Any]:
    """``params`` with the current span's trace context in ``_meta`` (a copy; the caller's is untouched)."""
    params = dict(params or {})
    record = _current.get()
    if record is None:
        return params
    meta = params.get("_meta")
    meta = dict(meta) if isinstance(meta, dict) else {}
    meta["traceparent"] = record.traceparent
    if record.tracestate:
        meta["tracestate"] = record.tracestate
    else:
        meta.pop("tracestate", None)
    params["_meta"] = meta
    return params


def inject_headers(headers: dict[str, str]) -> None:
    """Add the current span's ``traceparent`` (and ``tracestate``) to an HTTP backend request's headers."""
    record = _current.get()
    if record is not None:
        headers["traceparent"] = record.traceparent
        if record.tracestate:
            headers["tracestate"] = record.tracestate
