"""The gateway's backend over the backend layer's supervisor, against an in-process server (no I/O).

Uses the layer's shipped test double (``gateway.backends.testing.memory_transport``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.server.lowlevel import Server

from api.vmcp_config import BackendConfig, OperationalConfig
from gateway.backends.testing import MemoryTransport, memory_transport
from gateway.vmcp.backend import BackendConnection, CircuitOpenError

OPERATIONAL = OperationalConfig.model_validate(
    {
        "timeouts": {"call": "2s", "list": "2s", "connect": "2s"},
        "failureHandling": {
            "healthCheckInterval": "50ms",
            "healthCheckTimeout": "1s",
            "circuitBreaker": {"enabled": True, "failureThreshold": 2, "timeout": "30s"},
        },
    }
)


def _server(tools: list[str]) -> Server[Any]:
    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(
            tools=[types.Tool(name=n, input_schema={"type": "object"}) for n in tools]
        )

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        text = f"{params.name}: {(params.arguments or {}).get('x')}"
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)])

    return Server("memory", on_list_tools=list_tools, on_call_tool=call_tool)


async def _until(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(10):
        while not condition():  # noqa: ASYNC110 (polls state the backend task changes)
            await anyio.sleep(0.01)


def _backend(transport: MemoryTransport, clock: Callable[[], float] = time.monotonic) -> BackendConnection:
    config = BackendConfig(name="mem", url="http://mem.invalid/mcp")
    return BackendConnection(config, OPERATIONAL, transport=lambda _config: transport, clock=clock)


async def test_connects_lists_calls_and_reconnects_after_the_backend_dies() -> None:
    transport = memory_transport(_server(["echo", "add"]))
    backend = _backend(transport)
    async with anyio.create_task_group() as tg:
        await tg.start(backend.run)
        await _until(lambda: backend.health.state == "ready")
        assert [t.name for t in backend.cached().tools] == ["echo", "add"]
        assert backend.health.tool_count == 2

        async def echo() -> types.CallToolResult:
            params = {"name": "echo", "arguments": {"x": 1}}
            return await backend.call("tools/call", params, types.CallToolResult)

        result = await echo()
        assert result.content[0].text == "echo: 1"  # type: ignore[union-attr]

        transport.drop()
        await _until(lambda: transport.connects == 2 and backend.health.state == "ready")
        assert (await echo()).content[0].text == "echo: 1"  # type: ignore[union-attr]
        await backend.stop(drain_timeout=1)


async def test_failed_connects_open_the_breaker_and_mark_the_backend_unavailable() -> None:
    transport = memory_transport(_server(["echo"]))
    transport.refuse = "nobody home"
    skipped = [0.0]  # the open duration (30s) passes by moving this clock, not by waiting
    backend = _backend(transport, clock=lambda: time.monotonic() + skipped[0])
    async with anyio.create_task_group() as tg:
        await tg.start(backend.run)
        await _until(lambda: backend.health.breaker.state == "open")
        assert backend.health.state == "unavailable"
        assert "nobody home" in (backend.health.last_error or "")
        assert backend.cached().tools == []
        with pytest.raises(CircuitOpenError, match=r"backend 'mem' is unavailable .*circuit open"):
            await backend.call("tools/call", {"name": "echo"}, types.CallToolResult)
        transport.refuse = None  # the backend comes back: the supervisor's backoff reconnects it
        await _until(lambda: transport.connects >= 1)
        assert backend.health.breaker.state == "open"  # connected, but the circuit waits its 30s
        skipped[0] = 30.0
        await _until(lambda: backend.health.state == "ready")  # the half-open probe closed it
        assert backend.health.breaker.state == "closed"
        await backend.stop(drain_timeout=1)
