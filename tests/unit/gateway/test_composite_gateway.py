"""Composite tools inside the gateway, over in-process backends: listed with derived annotations only while
their step tools resolve, called through the gateway's own routing (``<backend>.<tool>`` and exposed
names), and refused clearly when a step's backend is down."""

from __future__ import annotations

from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError

from api.vmcp_config import BackendConfig, IncomingAuthConfig, VMCPConfig
from gateway.backends.testing import MemoryTransport, memory_transport
from gateway.vmcp.gateway import VirtualGateway
from tests.unit.gateway.test_vmcp_failure_modes import _until

READ_ONLY = types.ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)


def _server(name: str) -> Server[Any]:
    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
        return types.ListToolsResult(
            tools=[
                types.Tool(name="double", input_schema=schema, annotations=READ_ONLY),
                types.Tool(name="shout", input_schema={"type": "object"}),
            ]
        )

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        args = params.arguments or {}
        if params.name == "double":
            assert isinstance(args["n"], int), "the template's text was converted to the declared integer"
            return types.CallToolResult(content=[], structured_content={"value": args["n"] * 2})
        return types.CallToolResult(content=[types.TextContent(type="text", text=f"{name}: {args['m']}!")])

    return Server(name, on_list_tools=list_tools, on_call_tool=call_tool)


COMPOSITES = [
    {
        "name": "double_then_shout",
        "description": "Double n on a, shout it on b.",
        "parameters": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
        "steps": [
            {"id": "twice", "tool": "a.double", "arguments": {"n": "{{.params.n}}"}},
            {
                "id": "loud",
                "tool": "b_shout",
                "dependsOn": ["twice"],
                "arguments": {"m": "{{.steps.twice.output.value}}"},
            },
        ],
    },
    {
        "name": "read_only_pair",
        "description": "Two read-only steps.",
        "steps": [{"id": "x", "tool": "a.double", "arguments": {"n": 1}}, {"id": "y", "tool": "b.double"}],
    },
    {"name": "ghost", "description": "Calls a tool nobody has.", "steps": [{"id": "s", "tool": "c.nothing"}]},
]


def _config() -> VMCPConfig:
    return VMCPConfig.model_validate(
        {
            "name": "gw",
            "backends": [{"name": n, "url": f"http://{n}.invalid/mcp"} for n in ("a", "b")],
            "operational": {"failureHandling": {"healthCheckInterval": "50ms", "unhealthyThreshold": 1}},
            "compositeTools": COMPOSITES,
        }
    )


async def test_listed_called_and_refused_through_the_gateway() -> None:
    transports = {n: memory_transport(_server(n)) for n in ("a", "b")}

    def transport(config: BackendConfig) -> MemoryTransport:
        return transports[config.name]

    gateway = VirtualGateway(_config(), transport=transport)
    async with anyio.create_task_group() as tg:
        await tg.start(gateway.run)
        await _until(lambda: gateway.status()["phase"] == "Ready")
        view = await gateway.refresh(("tools",))
        tools = {t.name: t for t in view.tools}
        assert {"double_then_shout", "read_only_pair", "a_double", "b_shout"} <= set(tools)
        assert "ghost" not in tools
        assert (
            "compositeTools[ghost] is not listed: tools not available: step 's' ('c.nothing')"
            in view.warnings
        )
        # Fail-closed: shout declares no annotations, so the composite may be destructive and open-world.
        assert tools["double_then_shout"].annotations == types.ToolAnnotations(
            read_only_hint=False, destructive_hint=True, open_world_hint=True
        )
        assert tools["read_only_pair"].annotations == types.ToolAnnotations(
            read_only_hint=True, destructive_hint=False, open_world_hint=False
        )
        assert tools["double_then_shout"].input_schema["required"] == ["n"]

        result = await gateway.call_tool("double_then_shout", {"n": 21})
        assert not result.is_error
        assert result.structured_content == {"text": "b: 42!"}

        transports["b"].refuse = "b is down"
        transports["b"].drop()
        await _until(lambda: "b" in gateway.unavailable_backends())
        assert "double_then_shout" not in {t.name for t in gateway.view().tools}
        tg.cancel_scope.cancel()


async def test_each_step_is_authorized_for_the_callers_principal() -> None:
    transports = {n: memory_transport(_server(n)) for n in ("a", "b")}
    policies = [
        'permit(principal, action == Action::"call_tool", resource == Tool::"double_then_shout");',
        'permit(principal, action == Action::"call_tool", resource == Tool::"a_double");',
    ]  # b_shout, the second step's tool, is not permitted
    config = _config().model_copy(
        update={"incoming_auth": IncomingAuthConfig.model_validate({"authz": {"policies": policies}})}
    )
    gateway = VirtualGateway(_config(), transport=lambda c: transports[c.name])
    async with anyio.create_task_group() as tg:
        await tg.start(gateway.run)
        await gateway.apply_config(config)  # the policies come into force as on a reload
        await _until(lambda: gateway.status()["phase"] == "Ready")
        await gateway.refresh(("tools",))
        assert gateway.policy.authz is not None
        principal = gateway.policy.authz.principal(None)
        result = await gateway.call_tool("double_then_shout", {"n": 2}, principal=principal)
        assert result.is_error
        text = "".join(getattr(c, "text", "") for c in result.content)
        assert text.startswith("Workflow 'double_then_shout' failed: step 'loud' (tool 'b_shout') failed:")
        with pytest.raises(MCPError):  # the composite itself is authorized like any tool
            await gateway.call_tool("read_only_pair", {}, principal=principal)
        tg.cancel_scope.cancel()
