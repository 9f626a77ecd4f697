"""Traces across the data plane, received by a real OTLP receiver in this process (tests/support/otlp.py):
one trace runs client -> gateway -> proxy -> server with correct parent links; the proxy's fast path and
SDK path both take the client's W3C context; the gRPC exporter delivers too; ToolHive's inline settings
with legacy attribute names.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx2
import pytest

from api.mcptelemetryconfig import InlineTelemetry
from controller.reconcilers.telemetry_refs import inline_telemetry
from tests.dataplane.fastpathutil import answer, request
from tests.support.data_plane import BACKEND, data_plane
from tests.support.otlp import ReceivedSpan, grpc_receiver, http_receiver, otlp_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

SERVER, CLIENT = 2, 3
"""OTLP's SpanKind values."""
PROXY = "mcp-proxy"
"""The proxy's service name: its config's ``name`` (no OTEL_SERVICE_NAME given)."""


def traceparent() -> tuple[str, str, str]:
    """A client's sampled W3C context: (trace id, span id, header value)."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, span_id, f"00-{trace_id}-{span_id}-01"


async def call(base: str, header: str, method: str = "tools/call", **params: object) -> object:
    body, headers = request(method, dict(params))
    async with httpx2.AsyncClient(timeout=30) as http:
        status, reply = await answer(http, base, body, {**headers, "traceparent": header})
    assert status == 200, reply
    return reply


def one(spans: list[ReceivedSpan], service: str, kind: int, name: str) -> ReceivedSpan:
    found = [s for s in spans if s.service == service and s.kind == kind and s.name == name]
    assert len(found) == 1, (service, kind, name, [(s.service, s.kind, s.name) for s in spans])
    return found[0]


def ancestors(span: ReceivedSpan, spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
    by_id = {s.span_id: s for s in spans}
    chain = []
    while span.parent_span_id in by_id:
        span = by_id[span.parent_span_id]
        chain.append(span)
    return chain


async def test_one_trace_runs_client_gateway_proxy_server_with_parent_links(tmp_path: Path) -> None:
    with http_receiver() as (receiver, endpoint), data_plane(tmp_path, otlp_env(endpoint)) as plane:
        trace_id, client_span, header = traceparent()
        reply = await call(plane.gateway_url, header, name=f"{BACKEND}_add", arguments={"a": 2, "b": 3})
        assert "5" in str(reply)

        def complete(spans: list[ReceivedSpan]) -> bool:
            services = {s.service for s in spans if s.trace_id == trace_id}
            return {"gw", PROXY, "fixture-server"} <= services

        receiver.wait(complete)
        spans = receiver.trace(trace_id)
        gateway = one(spans, "gw", SERVER, f"tools/call {BACKEND}_add")
        assert gateway.parent_span_id == client_span, "the gateway continues the client's trace"
        assert gateway.attributes["gen_ai.tool.name"] == f"{BACKEND}_add"
        assert gateway.attributes["mcp.backend"] == BACKEND
        assert gateway.attributes["mcp.outcome"] == "ok"
        hop = one(spans, "gw", CLIENT, "backend tools/call")
        assert hop.parent_span_id == gateway.span_id
        assert hop.attributes["mcp.backend"] == BACKEND
        proxy = one(spans, PROXY, SERVER, "tools/call add")
        assert hop in ancestors(proxy, spans), "the proxy's span descends from the gateway's backend hop"
        assert proxy.attributes["mcp.outcome"] == "ok"
        proxy_hop = one(spans, PROXY, CLIENT, "backend tools/call")
        assert proxy_hop.parent_span_id == proxy.span_id
        server = one(spans, "fixture-server", SERVER, "tools/call add")
        assert server.parent_span_id == proxy_hop.span_id, "the server continues the proxy's hop (_meta)"
        assert {s.trace_id for s in spans} == {trace_id}


async def test_the_proxy_traces_its_fast_path_and_its_sdk_path_from_the_client_context(
    tmp_path: Path,
) -> None:
    with http_receiver() as (receiver, endpoint), data_plane(tmp_path, otlp_env(endpoint)) as plane:
        fast_trace, fast_parent, fast_header = traceparent()
        await call(plane.proxy_url, fast_header, name="echo", arguments={"message": "fast"})
        # A progress token asks for notifications: the fast path declines it, the SDK path serves it.
        sdk_trace, sdk_parent, sdk_header = traceparent()
        body, headers = request(
            "tools/call", {"name": "echo", "arguments": {"message": "sdk"}}, progressToken=7
        )
        async with httpx2.AsyncClient(timeout=30) as http:
            status, _ = await answer(http, plane.proxy_url, body, {**headers, "traceparent": sdk_header})
        assert status == 200

        def both(spans: list[ReceivedSpan]) -> bool:
            ids = {s.trace_id for s in spans if s.service == PROXY and s.kind == SERVER}
            return {fast_trace, sdk_trace} <= ids

        receiver.wait(both)
        for trace_id, parent in ((fast_trace, fast_parent), (sdk_trace, sdk_parent)):
            span = one(receiver.trace(trace_id), PROXY, SERVER, "tools/call echo")
            assert span.parent_span_id == parent
            assert span.attributes["mcp.era"] == "stateless"
            assert span.attributes["mcp.protocol.version"] == "2026-07-28"
        async with httpx2.AsyncClient() as http:
            metrics = (await http.get(f"{plane.proxy_url}/metrics")).text
        assert 'mcp_proxy_fast_path_requests_total{route="sdk"}' in metrics


async def test_the_grpc_exporter_delivers_the_proxy_spans(tmp_path: Path) -> None:
    env = otlp_env("", OTEL_EXPORTER_OTLP_PROTOCOL="grpc", OTEL_EXPORTER_OTLP_INSECURE="true")
    with grpc_receiver() as (receiver, endpoint):
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
        with data_plane(tmp_path, env) as plane:
            trace_id, parent, header = traceparent()
            await call(plane.proxy_url, header, name="add", arguments={"a": 1, "b": 1})
            receiver.wait(lambda spans: any(s.trace_id == trace_id and s.service == PROXY for s in spans))
            span = one(receiver.trace(trace_id), PROXY, SERVER, "tools/call add")
            assert span.parent_span_id == parent


async def test_toolhive_inline_telemetry_with_legacy_attributes_reaches_the_collector(tmp_path: Path) -> None:
    """ToolHive's flat ``config.telemetry`` of a VirtualMCPServer, as the operator renders it, makes the
    gateway's spans carry ToolHive's legacy attribute names next to the semantic-convention ones."""
    settings = {"tracingEnabled": True, "samplingRate": "1", "insecure": True, "serviceName": "my-vmcp"}
    with http_receiver() as (receiver, endpoint):
        inline = InlineTelemetry.model_validate({**settings, "endpoint": endpoint})
        rendered = inline_telemetry(inline, "unused").env
        env = {variable["name"]: variable["value"] for variable in rendered}
        with data_plane(tmp_path, env) as plane:
            trace_id, _, header = traceparent()
            await call(plane.gateway_url, header, name=f"{BACKEND}_add", arguments={"a": 1, "b": 2})
            name = f"tools/call {BACKEND}_add"  # every process of the plane is "my-vmcp" here
            receiver.wait(lambda spans: any(s.trace_id == trace_id and s.name == name for s in spans))
            span = one(receiver.trace(trace_id), "my-vmcp", SERVER, name)
    assert span.attributes["gen_ai.tool.name"] == span.attributes["mcp.tool.name"] == f"{BACKEND}_add"
    assert span.attributes["mcp.method.name"] == span.attributes["mcp.method"] == "tools/call"
    assert (span.attributes["rpc.system"], span.attributes["rpc.service"]) == ("jsonrpc", "mcp")
