"""The gateway's tool optimizer over real MCP servers (two fixture servers, each its own process, behind
``mcp-operator vmcp``), on both front eras: the front lists only ``find_tool`` and ``call_tool``;
``find_tool`` finds tools by a word of their description and ``call_tool`` reaches the owning backend,
with the gateway's filters, Cedar policies, audit and metrics applying as for a direct call.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from tests.support import gateway_processes as gp

pytestmark = pytest.mark.slow

FRONT_MODES = ["auto", "legacy"]  # the 2026-07-28 era (stateless) and the 2025-11-25 era (sessions)

POLICIES = [
    "permit(principal, action, resource);",
    'forbid(principal, action, resource == Tool::"beta_add");',
]


def _config(ports: dict[str, int], *, optimizer: bool = True, authz: bool = True) -> dict[str, Any]:
    config: dict[str, Any] = {
        "name": "gw",
        "backends": [{"name": n, "url": f"http://127.0.0.1:{ports[n]}/mcp"} for n in ("alpha", "beta")],
        # alpha's slow tool is filtered out of the catalogue
        "aggregation": {"tools": [{"workload": "alpha", "filter": ["echo", "add"]}]},
        "incomingAuth": {"type": "anonymous", **({"authz": {"policies": POLICIES}} if authz else {})},
    }
    if optimizer:
        config["optimizer"] = {"maxToolsToReturn": 5}
    return config


Gateway = gp.FixtureGateway


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with gp.fixture_gateway(tmp_path_factory.mktemp("vmcp-optimizer"), _config) as fixture:
        yield fixture


def _text(result: Any) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


async def _error(gw: Gateway, mode: str, tool: str, arguments: dict[str, Any]) -> MCPError:
    """The JSON-RPC error a call of ``tool`` answers."""
    try:
        async with Client(f"{gw.url}/mcp", mode=mode) as client:
            result = await client.call_tool(tool, arguments)
    except BaseException as exc:  # the client's task group wraps the MCPError
        while isinstance(exc, BaseExceptionGroup):
            exc = exc.exceptions[0]
        if isinstance(exc, MCPError):
            return exc
        raise
    raise AssertionError(f"{tool} answered {result!r}, not an error")


async def _find(client: Client, description: str) -> dict[str, Any]:
    result = await client.call_tool("find_tool", {"tool_description": description})
    assert not result.is_error, _text(result)
    assert result.structured_content == json.loads(_text(result))
    answer: dict[str, Any] = result.structured_content
    return answer


@pytest.mark.parametrize("mode", FRONT_MODES)
async def test_the_front_lists_only_find_tool_and_call_tool(gateway: Gateway, mode: str) -> None:
    async with Client(f"{gateway.url}/mcp", mode=mode) as client:
        tools = (await client.list_tools()).tools
    assert sorted(t.name for t in tools) == ["call_tool", "find_tool"]
    find = next(t for t in tools if t.name == "find_tool")
    assert find.input_schema["required"] == ["tool_description"]


@pytest.mark.parametrize("mode", FRONT_MODES)
async def test_find_tool_finds_a_tool_by_a_word_of_its_description(gateway: Gateway, mode: str) -> None:
    async with Client(f"{gateway.url}/mcp", mode=mode) as client:
        answer = await _find(client, "echo a message back")
        assert [t["name"] for t in answer["tools"]] == ["alpha_echo", "beta_echo"]
        echo = answer["tools"][0]
        assert echo["description"].startswith("Echo the message back")
        assert echo["inputSchema"]["properties"]["message"]["type"] == "string"
        metrics = answer["token_metrics"]
        assert 0 < metrics["returned_tokens"] < metrics["baseline_tokens"]
        assert 0 < metrics["savings_percent"] < 100

        # beta_add is denied by the policies: only alpha's add is found
        answer = await _find(client, "integers")
        assert [t["name"] for t in answer["tools"]] == ["alpha_add"]
        # alpha_slow is filtered out of the catalogue: only beta's slow tool is found
        answer = await _find(client, "sleep then answer")
        assert [t["name"] for t in answer["tools"]] == ["beta_slow"]
        assert (await _find(client, "kubernetes"))["tools"] == []


@pytest.mark.parametrize("mode", FRONT_MODES)
async def test_call_tool_reaches_the_owning_backend(gateway: Gateway, mode: str) -> None:
    async with Client(f"{gateway.url}/mcp", mode=mode) as client:
        for backend in ("alpha", "beta"):
            arguments = {"tool_name": f"{backend}_echo", "parameters": {"message": mode}}
            result = await client.call_tool("call_tool", arguments)
            assert not result.is_error
            assert _text(result) == f"{backend}: {mode}"
        result = await client.call_tool(
            "call_tool", {"tool_name": "alpha_add", "parameters": {"a": 2, "b": 3}}
        )
        assert _text(result) == "5"
        # a tool_name slipped into the parameters still names the tool
        result = await client.call_tool(
            "call_tool", {"parameters": {"tool_name": "beta_echo", "message": "x"}}
        )
        assert _text(result) == "beta: x"

    # the inner call is audited and counted under the tool's own name, as a direct call is
    audit = [r for r in gateway.log() if r.get("event") == "tools/call" and r.get("tool") == "beta_echo"]
    assert any(r["backendTool"] == "echo" and r["outcome"] == "ok" for r in audit), audit
    metrics = httpx2.get(f"{gateway.url}/metrics").text
    assert 'mcp_proxy_requests_total{method="tools/call",outcome="ok",tool="alpha_echo"}' in metrics
    assert "mcp_proxy_fast_path_enabled 1.0" in metrics  # on, and declining tools/* for the optimizer


@pytest.mark.parametrize("mode", FRONT_MODES)
async def test_hidden_denied_and_missing_tools_stay_unreachable(gateway: Gateway, mode: str) -> None:
    denied = await _error(
        gateway, mode, "call_tool", {"tool_name": "beta_add", "parameters": {"a": 1, "b": 2}}
    )
    filtered = await _error(gateway, mode, "call_tool", {"tool_name": "alpha_slow", "parameters": {}})
    missing = await _error(gateway, mode, "call_tool", {"tool_name": "nope", "parameters": {}})
    # as for direct calls under policies: a denied tool answers what a missing one does
    assert denied.error.code == filtered.error.code == missing.error.code == 403
    assert denied.message == filtered.message == missing.message
    # while the optimizer is on, only its two tools can be called directly
    direct = await _error(gateway, mode, "alpha_echo", {"message": "hi"})
    assert direct.error.code == -32602
    assert "Unknown tool: alpha_echo" in direct.message


@pytest.mark.parametrize("mode", FRONT_MODES)
async def test_bad_arguments_answer_a_tool_error_saying_what_to_send(gateway: Gateway, mode: str) -> None:
    async with Client(f"{gateway.url}/mcp", mode=mode) as client:
        result = await client.call_tool("find_tool", {"tool_keywords": ["echo"]})
        assert result.is_error
        assert 'find_tool needs "tool_description"' in _text(result)
        result = await client.call_tool("call_tool", {"parameters": {"message": "hi"}})
        assert result.is_error
        assert 'call_tool needs "tool_name"' in _text(result)
        result = await client.call_tool("call_tool", {"tool_name": "alpha_echo", "parameters": "hi"})
        assert result.is_error
        assert '"parameters" must be an object' in _text(result)


async def test_a_reload_turns_the_optimizer_off_and_on(gateway: Gateway) -> None:
    try:
        gateway.reconfigure(authz=False)
        # without policies an unknown name is reported unknown, as for a direct call
        missing = await _error(gateway, "legacy", "call_tool", {"tool_name": "nope"})
        assert missing.error.code == -32602
        assert "Unknown tool: nope" in missing.message
        heard = anyio.Event()

        async def on_message(message: Any) -> None:
            if isinstance(message, types.ToolListChangedNotification):
                heard.set()

        async with Client(f"{gateway.url}/mcp", mode="legacy", message_handler=on_message) as client:
            assert len((await client.list_tools()).tools) == 2
            # in a thread: the client's event loop keeps serving its notification stream meanwhile
            await anyio.to_thread.run_sync(functools.partial(gateway.reconfigure, optimizer=False))
            with anyio.fail_after(10):
                await heard.wait()  # a subscribed client is told that the listed tools changed
            names = sorted(t.name for t in (await client.list_tools()).tools)
        assert names == ["alpha_add", "alpha_echo", "beta_echo", "beta_slow"]  # the policies are back
    finally:
        gateway.reconfigure()
    async with Client(f"{gateway.url}/mcp") as client:
        assert sorted(t.name for t in (await client.list_tools()).tools) == ["call_tool", "find_tool"]
