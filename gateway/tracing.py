"""Spans of the data plane: one SERVER span per front MCP request (proxy SDK path, fast path, gateway) and
one CLIENT span per backend hop, with W3C trace context taken from the front and passed on.

Every hook in the hot path is guarded by the module flag :data:`enabled` (one boolean check when tracing
is off: no span, no context object, no header parsing). The process's CLI turns it on with
:func:`activate` after :func:`telemetry.start_tracing` found an endpoint.

The parent of a front request's span: the ``traceparent`` / ``tracestate`` headers of its HTTP request,
else the ``_meta`` of its params (where MCP carries trace context, SEP-414). A backend hop carries the
hop span's context in both: in the request's ``_meta`` (every transport, stdio included) and, for HTTP
backends, as headers (:func:`inject_headers`, from :mod:`gateway.backends.raw_channel`; the SDK's own
client already injects ``_meta`` on its path).

Span attributes follow the MCP semantic conventions where they exist (``mcp.method.name``,
``gen_ai.tool.name``, ``gen_ai.prompt.name``, ``mcp.resource.uri``, ``mcp.protocol.version``) plus ours:
``mcp.backend`` (the backend's name), ``mcp.era`` (``session`` for 2025-11-25 sessions, ``stateless``
for 2026-07-28) and ``mcp.outcome`` (the label of ``mcp_proxy_requests_total``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, StatusCode, Tracer

from telemetry import Tracing, start_tracing

__all__ = [
    "OFF",
    "Incoming",
    "activate",
    "backend_span",
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
_tracer: Tracer = trace.get_tracer("mcp-operator")
_FAILED = frozenset({"error", "denied"})
_TARGET_ATTRIBUTE = {
    "tools/call": "gen_ai.tool.name",
    "prompts/get": "gen_ai.prompt.name",
    "resources/read": "mcp.resource.uri",
}


def activate(tracing: Tracing) -> None:
    """Turn the data plane's spans on when ``tracing`` is (the process's CLI calls it once)."""
    global enabled, _tracer  # noqa: PLW0603 - one switch per process, read by every hook
    enabled = tracing.enabled
    if tracing.provider is not None:
        _tracer = tracing.provider.get_tracer("mcp-operator")


def start(default_service_name: str) -> Tracing:
    """Tracing as the environment asks (:mod:`telemetry.settings`), activated for the data plane's hooks;
    raises ``ValueError`` naming the variable that is wrong."""
    tracing = start_tracing(default_service_name)
    activate(tracing)
    return tracing


@dataclass(frozen=True, slots=True)
class Incoming:
    """What a front request says about its trace: the parent context and the protocol era."""

    parent: Context | None
    protocol_version: str | None
    era: str


def incoming(scope: object, meta: object) -> Incoming:
    """The trace context of a front request from its ASGI ``scope`` (headers) or its params' ``_meta``."""
    carrier: dict[str, str] = {}
    version = None
    session = False
    headers = scope.get("headers") if isinstance(scope, dict) else None
    for key, value in headers or ():
        if key in (b"traceparent", b"tracestate"):
            carrier[key.decode()] = value.decode("latin-1")
        elif key == b"mcp-protocol-version":
            version = value.decode("latin-1")
        elif key == b"mcp-session-id":
            session = True
    if (
        "traceparent" not in carrier
        and isinstance(meta, Mapping)
        and isinstance(meta.get("traceparent"), str)
    ):
        carrier = {k: v for k in ("traceparent", "tracestate") if isinstance(v := meta.get(k), str)}
    parent = propagate.extract(carrier) if carrier else None
    if parent is not None and not trace.get_current_span(parent).get_span_context().is_valid:
        parent = None
    return Incoming(parent, version, "session" if session else "stateless")


@contextmanager
def request_span(method: str, target: str, came: Incoming | None) -> Iterator[None]:
    """The SERVER span of one front request, current while it runs (its backend hop nests in it)."""
    attributes: dict[str, Any] = {"mcp.method.name": method}
    name_attribute = _TARGET_ATTRIBUTE.get(method)
    if name_attribute is not None and target:
        attributes[name_attribute] = target
    if came is not None:
        attributes["mcp.era"] = came.era
        if came.protocol_version:
            attributes["mcp.protocol.version"] = came.protocol_version
    with _tracer.start_as_current_span(
        f"{method} {target}" if target else method,
        context=came.parent if came is not None else None,
        kind=SpanKind.SERVER,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ):
        yield


def record_outcome(outcome: str, error: str | None = None, *, backend: str | None = None) -> None:
    """Set the current request span's outcome (and the backend it went to, when known)."""
    span = trace.get_current_span()
    span.set_attribute("mcp.outcome", outcome)
    if backend:
        span.set_attribute("mcp.backend", backend)
    if outcome in _FAILED:
        span.set_status(StatusCode.ERROR, error)


@contextmanager
def backend_span(backend: str, method: str) -> Iterator[None]:
    """The CLIENT span of one backend hop; exceptions mark it failed and propagate."""
    with _tracer.start_as_current_span(
        f"backend {method}",
        kind=SpanKind.CLIENT,
        attributes={"mcp.method.name": method, "mcp.backend": backend},
    ):
        yield


def with_trace_meta(params: dict[str, Any] | None) -> dict[str, Any]:
    """``params`` with the current span's trace context in ``_meta`` (a copy; the caller's is untouched)."""
    params = dict(params or {})
    meta = params.get("_meta")
    meta = dict(meta) if isinstance(meta, dict) else {}
    propagate.inject(meta)
    params["_meta"] = meta
    return params


def inject_headers(headers: dict[str, str]) -> None:
    """Add the current span's ``traceparent`` (and ``tracestate``) to an HTTP backend request's headers."""
    propagate.inject(headers)
