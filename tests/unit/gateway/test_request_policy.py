"""The one request policy as the virtual gateway uses it: routed tool calls are counted in the proxy's
request metrics and audited like the proxy's, against in-process backends (no I/O)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError

from api.proxy_config import AuditConfig
from api.virtualmcpserver import GatewayAudit
from api.vmcp_config import VMCPConfig
from controller.reconcilers.virtualmcpserver_build import build_audit
from gateway.backends.testing import memory_transport
from gateway.observability import AUDIT_LOGGER, Auditor, RequestMetrics
from gateway.request_policy import RequestPolicy, caller_of
from gateway.vmcp.gateway import VirtualGateway


def _server(name: str) -> Server[Any]:
    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        tools = [types.Tool(name=t, input_schema={"type": "object"}) for t in ("echo", "fail")]
        return types.ListToolsResult(tools=tools)

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        text = f"{name}: {(params.arguments or {}).get('x')}"
        content = [types.TextContent(type="text", text=text)]
        return types.CallToolResult(content=content, is_error=params.name == "fail")

    return Server(name, on_list_tools=list_tools, on_call_tool=call_tool)


async def _until(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(10):
        while not condition():  # noqa: ASYNC110 (polls state the backends' tasks change)
            await anyio.sleep(0.01)


def _sample(metrics: RequestMetrics, tool: str, outcome: str) -> float | None:
    labels = {"method": "tools/call", "tool": tool, "outcome": outcome}
    return metrics.registry.get_sample_value("mcp_proxy_requests_total", labels)


def _audit(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    records = [r.msg for r in caplog.records if r.name == AUDIT_LOGGER]
    assert all(isinstance(r, dict) and r["event"] == "tools/call" for r in records), records
    return records  # type: ignore[return-value]


@pytest.mark.usefixtures("structured_logs")
async def test_gateway_tool_calls_are_counted_and_audited_through_the_request_policy(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)
    transports = {name: memory_transport(_server(name)) for name in ("a", "b")}
    config = VMCPConfig.model_validate(
        {"name": "gw", "backends": [{"name": n, "url": f"http://{n}.invalid/mcp"} for n in transports]}
    )
    metrics = RequestMetrics()
    policy = RequestPolicy(metrics=metrics, auditor=Auditor(AuditConfig(include_arguments=True)))
    gateway = VirtualGateway(config, transport=lambda backend: transports[backend.name], policy=policy)
    async with anyio.create_task_group() as tg:
        await tg.start(gateway.run)
        await _until(lambda: gateway.readiness()[1] == "Ready" and len(gateway.view().tools) == 4)

        result = await gateway.call_tool("b_echo", {"x": 1}, caller="alice")
        assert result.content[0].text == "b: 1"  # type: ignore[union-attr]
        assert (await gateway.call_tool("a_fail", {}, caller="bob")).is_error
        with pytest.raises(MCPError, match="Unknown tool: c_echo"):
            await gateway.call_tool("c_echo", {})
        tg.cancel_scope.cancel()

    assert _sample(metrics, "b_echo", "ok") == 1
    assert _sample(metrics, "a_fail", "tool_error") == 1
    assert _sample(metrics, "", "denied") == 1  # an unknown name is not a label value
    audit = _audit(caplog)
    assert [(a["caller"], a["tool"], a["backendTool"], a["outcome"]) for a in audit] == [
        ("alice", "b_echo", "echo", "ok"),
        ("bob", "a_fail", "fail", "tool_error"),
        ("anonymous", "c_echo", None, "denied"),
    ]
    assert audit[0]["arguments"] == {"x": 1}
    assert audit[2]["error"] == "Unknown tool: c_echo"


async def test_timed_requests_count_their_outcome() -> None:
    policy = RequestPolicy()

    async def listed() -> str:
        return "listed"

    async def broken() -> None:
        raise MCPError(types.INTERNAL_ERROR, "down")

    assert await policy.timed("prompts/list", listed) == "listed"
    with pytest.raises(MCPError):
        await policy.timed("prompts/get", broken)
    registry = policy.metrics.registry
    for method, outcome in (("prompts/list", "ok"), ("prompts/get", "error")):
        labels = {"method": method, "tool": "", "outcome": outcome}
        assert registry.get_sample_value("mcp_proxy_requests_total", labels) == 1
    count = registry.get_sample_value("mcp_proxy_request_duration_seconds_count", {"method": "prompts/get"})
    assert count == 1


def test_the_caller_is_the_authenticated_identity_else_the_client_address() -> None:
    state = {"mcp_auth_identity": "alice"}
    assert caller_of({"state": state, "client": ("10.0.0.1", 5)}) == "alice"
    assert caller_of({"client": ("10.0.0.1", 5)}) == "10.0.0.1"
    assert caller_of(None) == "anonymous"


@pytest.mark.usefixtures("structured_logs")
async def test_toolhives_audit_settings_shape_the_gateways_audit_line_and_reload(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``spec.config.audit`` as the operator renders it: the component and the request data (cut at
    ``maxDataSize``) on each line; a reload with ``enabled: false`` stops the lines."""
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)
    transports = {"a": memory_transport(_server("a"))}
    audit = GatewayAudit(component="vmcp-team", include_request_data=True, max_data_size=16)
    base = {"name": "gw", "backends": [{"name": "a", "url": "http://a.invalid/mcp"}]}
    config = VMCPConfig.model_validate({**base, "audit": build_audit(audit)})
    policy = RequestPolicy(metrics=RequestMetrics(), auditor=Auditor(config.audit))
    gateway = VirtualGateway(config, transport=lambda backend: transports[backend.name], policy=policy)
    async with anyio.create_task_group() as tg:
        await tg.start(gateway.run)
        await _until(lambda: gateway.readiness()[1] == "Ready" and len(gateway.view().tools) == 2)
        await gateway.call_tool("a_echo", {"x": 1}, caller="alice")
        await gateway.call_tool("a_echo", {"x": "a long value past the limit"}, caller="alice")
        off = build_audit(GatewayAudit(enabled=False))
        await gateway.apply_config(VMCPConfig.model_validate({**base, "audit": off}))
        await gateway.call_tool("a_echo", {"x": 2}, caller="bob")
        tg.cancel_scope.cancel()

    lines = _audit(caplog)
    assert [(a["caller"], a["component"]) for a in lines] == [("alice", "vmcp-team")] * 2  # none for bob
    assert lines[0]["arguments"] == {"x": 1} and "argumentsTruncated" not in lines[0]
    assert lines[1]["arguments"] == '{"x":"a long val' and lines[1]["argumentsTruncated"] is True
