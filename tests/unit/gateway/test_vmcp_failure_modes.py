"""The gateway's routing and lists while one backend is down, over in-process servers (no I/O): its tools
leave the view, its calls get -32001 naming it, ``fail`` refuses lists and ``best_effort`` lists the
others, and the healthy backend keeps answering."""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from api.vmcp_config import BackendConfig, VMCPConfig
from gateway.backends.testing import MemoryTransport, memory_transport
from gateway.vmcp.gateway import VirtualGateway
from tests.unit.gateway.test_vmcp_backend import _server


def _config(mode: str) -> VMCPConfig:
    return VMCPConfig.model_validate(
        {
            "name": "gw",
            "backends": [{"name": n, "url": f"http://{n}.invalid/mcp"} for n in ("a", "b")],
            "operational": {
                "timeouts": {"call": "2s", "list": "2s", "connect": "2s"},
                "failureHandling": {
                    "healthCheckInterval": "50ms",
                    "unhealthyThreshold": 2,
                    "partialFailureMode": mode,
                    "circuitBreaker": {"enabled": True, "failureThreshold": 2, "timeout": "30s"},
                },
            },
        }
    )


async def _until(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(10):
        while not condition():  # noqa: ASYNC110 (polls state the backend tasks change)
            await anyio.sleep(0.01)


def _text(result: types.CallToolResult) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


@pytest.mark.parametrize("mode", ["fail", "best_effort"])
async def test_a_down_backend_is_refused_at_once_and_the_other_keeps_answering(mode: str) -> None:
    transports = {n: memory_transport(_server(["echo"])) for n in ("a", "b")}
    skipped = [0.0]

    def transport(config: BackendConfig) -> MemoryTransport:
        return transports[config.name]

    gateway = VirtualGateway(_config(mode), transport=transport, clock=lambda: time.monotonic() + skipped[0])
    async with anyio.create_task_group() as tg:
        await tg.start(gateway.run)
        await _until(lambda: gateway.status()["phase"] == "Ready")
        assert [t.name for t in gateway.view().tools] == ["a_echo", "b_echo"]

        transports["b"].refuse = "b is down"
        transports["b"].drop()
        await _until(lambda: not gateway.backends["b"].listed)
        assert [t.name for t in gateway.view().tools] == ["a_echo"]
        with pytest.raises(MCPError) as refused:
            await gateway.call_tool("b_echo", {"x": 1})
        assert refused.value.error.code == -32001
        assert refused.value.message.startswith("backend 'b' is unavailable (circuit open after ")
        assert _text(await gateway.call_tool("a_echo", {"x": 1})) == "echo: 1"
        if mode == "fail":
            with pytest.raises(MCPError, match=r"^backend\(s\) 'b' unavailable and partialFailureMode"):
                gateway.check_partial_failure()
        else:
            gateway.check_partial_failure()  # lists the others

        transports["b"].refuse = None
        skipped[0] = 30.0  # the open duration passes: the reconnected session's probe is the trial
        await _until(lambda: gateway.backends["b"].listed)
        assert [t.name for t in gateway.view().tools] == ["a_echo", "b_echo"]
        assert _text(await gateway.call_tool("b_echo", {"x": 2})) == "echo: 2"
        gateway.check_partial_failure()
        tg.cancel_scope.cancel()
