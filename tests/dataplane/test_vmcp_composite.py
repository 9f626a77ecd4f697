"""Composite tools through the real gateway (``mcp-operator vmcp``) over real MCP servers, both front eras:
the fixture server (streamable HTTP) and server-everything (legacy SSE). A three-step composite (two steps
in parallel, one using both outputs) returns the combined result; a failing step aborts with a tool error
naming it, or, under ``continue``, lets the workflow finish with the step's ``defaultResults``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import mcp_types as types
import pytest
from mcp import Client

from tests.support.gateway_processes import (
    NPM_BIN,
    Proc,
    fixture_server,
    free_port,
    get_json,
    start,
    vmcp_gateway,
    wait_http,
    wait_until,
    write_config,
)

pytestmark = pytest.mark.slow

SUM_REPORT = {
    "name": "sum_report",
    "description": "Add on two servers at once, then report both sums.",
    "parameters": {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer", "default": 3}},
        "required": ["a"],
    },
    "steps": [
        {"id": "left", "tool": "fixture.add", "arguments": {"a": "{{.params.a}}", "b": "{{.params.b}}"}},
        {
            "id": "right",
            "tool": "everything.get-sum",
            "arguments": {"a": "{{.params.a}}", "b": "{{.params.b}}"},
        },
        {
            "id": "report",
            "tool": "everything_echo",
            "dependsOn": ["left", "right"],
            "arguments": {"message": "fixture={{.steps.left.output.result}} / {{.steps.right.output.text}}"},
        },
    ],
    "output": {
        "properties": {
            "fixtureSum": {"type": "integer", "value": "{{.steps.left.output.result}}"},
            "report": {"type": "string", "value": "{{.steps.report.output.text}}"},
        },
        "required": ["report"],
    },
}


ASK_THEN_ECHO = {
    "name": "ask_then_echo",
    "description": "Ask the user for a name, then echo a greeting.",
    "steps": [
        {
            "id": "ask",
            "type": "elicitation",
            "message": "Who is there?",
            "schema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
            "timeout": "20s",
        },
        {
            "id": "greet",
            "tool": "everything.echo",
            "dependsOn": ["ask"],
            "arguments": {"message": "hello {{.steps.ask.output.content.name}}"},
        },
    ],
}


ADD_EACH = {
    "name": "add_each",
    "description": "Add one to every number.",
    "parameters": {"type": "object", "properties": {"numbers": {"type": "array"}}},
    "steps": [
        {
            "id": "each",
            "type": "forEach",
            "collection": "{{json .params.numbers}}",
            "itemVar": "n",
            "step": {"tool": "fixture.add", "arguments": {"a": "{{.forEach.n}}", "b": 1}},
        }
    ],
}


def _fragile(name: str, on_error: dict[str, Any]) -> dict[str, Any]:
    """``bad`` calls the fixture's add with a word where it takes an integer: the tool answers an error."""
    return {
        "name": name,
        "description": "A step that fails, then a step after it.",
        "steps": [
            {
                "id": "bad",
                "tool": "fixture.add",
                "arguments": {"a": "not-a-number", "b": 1},
                "onError": on_error,
                "defaultResults": {"result": -1},
            },
            {
                "id": "after",
                "tool": "everything.echo",
                "dependsOn": ["bad"],
                "arguments": {"message": "{{.steps.bad.status}} {{.steps.bad.output.result}}"},
            },
        ],
    }


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    logdir = tmp_path_factory.mktemp("composite")
    ports = {n: free_port() for n in ("fixture", "everything", "gateway")}
    procs: list[Proc] = []
    try:
        everything = start(
            "everything",
            [str(NPM_BIN / "mcp-server-everything"), "sse"],
            logdir,
            {"PORT": str(ports["everything"])},
        )
        procs.append(everything)
        procs.append(fixture_server("fixture", ports["fixture"], logdir))
        wait_http(f"http://127.0.0.1:{ports['everything']}/sse", everything)
        config_path = logdir / "vmcp.yaml"
        write_config(config_path, _config(ports))
        url, gateway = vmcp_gateway(ports["gateway"], config_path, logdir)
        procs.append(gateway)
        wait_until(lambda: get_json(f"{url}/status")["phase"] == "Ready", what="both backends ready")
        yield url
    finally:
        for proc in procs:
            proc.stop()


def _config(ports: dict[str, int]) -> dict[str, Any]:
    return {
        "name": "gw",
        "backends": [
            {"name": "fixture", "url": f"http://127.0.0.1:{ports['fixture']}/mcp"},
            {"name": "everything", "url": f"http://127.0.0.1:{ports['everything']}/sse", "transport": "sse"},
        ],
        "operational": {"timeouts": {"call": "20s", "list": "10s", "connect": "20s"}},
        "compositeTools": [
            SUM_REPORT,
            ASK_THEN_ECHO,
            ADD_EACH,
            _fragile("fragile_abort", {"action": "abort"}),
            _fragile("fragile_continue", {"action": "continue"}),
        ],
    }


def _text(result: Any) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


@pytest.mark.parametrize("mode", ["auto", "legacy"])  # the 2026-07-28 front, and 2025-11-25 sessions
async def test_composite_tools_through_the_gateway(gateway: str, mode: str) -> None:
    async with Client(f"{gateway}/mcp", mode=mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert {"sum_report", "fragile_abort", "fragile_continue", "fixture_add", "everything_echo"} <= set(
            tools
        )
        listed = tools["sum_report"]
        assert listed.input_schema["required"] == ["a"]
        assert listed.output_schema is not None and set(listed.output_schema["properties"]) == {
            "fixtureSum",
            "report",
        }
        assert (
            listed.annotations is not None and listed.annotations.read_only_hint is False
        )  # add says nothing

        result = await client.call_tool("sum_report", {"a": 2})
        assert not result.is_error, _text(result)
        assert result.structured_content == {
            "fixtureSum": 5,
            "report": "Echo: fixture=5 / The sum of 2 and 3 is 5.",
        }

        aborted = await client.call_tool("fragile_abort", {})
        assert aborted.is_error
        assert _text(aborted).startswith(
            "Workflow 'fragile_abort' failed: step 'bad' (tool 'fixture.add') failed:"
        )

        each = await client.call_tool("add_each", {"numbers": [1, 10, 100]})
        assert not each.is_error, _text(each)
        assert each.structured_content is not None
        assert [i["output"] for i in each.structured_content["iterations"]] == [
            {"result": 2},
            {"result": 11},
            {"result": 101},
        ]

        continued = await client.call_tool("fragile_continue", {})
        assert not continued.is_error, _text(continued)
        assert continued.structured_content == {"text": "Echo: failed -1"}


async def test_an_elicitation_step_asks_a_session_client_and_is_refused_clearly_on_the_modern_era(
    gateway: str,
) -> None:
    asked: list[str] = []

    async def answer(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"name": "Ada"})

    async with Client(f"{gateway}/mcp", mode="legacy", elicitation_callback=answer) as client:
        result = await client.call_tool("ask_then_echo", {})
        assert not result.is_error, _text(result)
        assert result.structured_content == {"text": "Echo: hello Ada"}
        assert asked == ["Who is there?"]

    async with Client(f"{gateway}/mcp", mode="auto", elicitation_callback=answer) as client:
        refused = await client.call_tool("ask_then_echo", {})
        assert refused.is_error
        assert _text(refused).startswith(
            "Workflow 'ask_then_echo' failed: step 'ask' (elicitation) failed: the client cannot be asked"
        )
