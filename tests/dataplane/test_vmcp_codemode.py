"""Code mode over real MCP servers (two fixture servers, each its own process, behind ``mcp-operator
vmcp``), on both front eras: ``execute_tool_script`` is listed after the caller's tools, its script calls
both backends (a loop, ``parallel``), every inner call takes the gateway's ``tools/call`` path (Cedar
decision, audit line), the limits stop runaway scripts while other clients are answered, and errors are
tool results naming the script's line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from gateway.vmcp.codemode.runner import ScriptRunner
from gateway.vmcp.codemode.script import Limits, error_result
from tests.dataplane.fastpathutil import fast_route
from tests.support import gateway_processes as gp

pytestmark = pytest.mark.slow

FRONT_MODES = ["auto", "legacy"]  # the 2026-07-28 era (stateless) and the 2025-11-25 era (sessions)

POLICIES = [
    "permit(principal, action, resource);",
    'forbid(principal, action, resource == Tool::"beta_add");',
]
CODE_MODE = {"enabled": True, "stepLimit": 50000, "parallelMaxConcurrency": 4, "toolCallTimeout": "1s"}


def _config(ports: dict[str, int], *, code_mode: bool = True, optimizer: bool = False) -> dict[str, Any]:
    config: dict[str, Any] = {
        "name": "gw",
        "backends": [{"name": n, "url": f"http://127.0.0.1:{ports[n]}/mcp"} for n in ("alpha", "beta")],
        # alpha's slow tool is filtered out
        "aggregation": {"tools": [{"workload": "alpha", "filter": ["echo", "add"]}]},
        "incomingAuth": {"type": "anonymous", "authz": {"policies": POLICIES}},
    }
    if code_mode:
        config["codeMode"] = CODE_MODE
    if optimizer:
        config["optimizer"] = {"maxToolsToReturn": 3}
    return config


Gateway = gp.FixtureGateway


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with gp.fixture_gateway(tmp_path_factory.mktemp("vmcp-codemode"), _config) as fixture:
        yield fixture


def _audit(gw: Gateway, tool: str, count: int = 0) -> list[dict[str, Any]]:
    """The audit records of calls of ``tool``, once there are at least ``count`` (the log is a pipe)."""

    def records() -> list[dict[str, Any]]:
        return [r for r in gw.log() if r.get("event") == "tools/call" and r.get("tool") == tool]

    gp.wait_until(lambda: len(records()) >= count, what=f"{count} audit records of {tool}")
    return records()


def _text(result: Any) -> str:
    return "\n".join(getattr(c, "text", "") for c in result.content)


async def _script(gw: Gateway, mode: str, script: str, data: dict[str, Any] | None = None) -> Any:
    async with Client(f"{gw.url}/mcp", mode=mode) as client:
        arguments: dict[str, Any] = {"script": script, **({"data": data} if data else {})}
        return await client.call_tool("execute_tool_script", arguments)


@pytest.mark.parametrize("mode", FRONT_MODES)
async def test_execute_tool_script_is_listed_after_the_callers_tools(gateway: Gateway, mode: str) -> None:
    before = (await fast_route(gateway.url)).get("fast", 0.0)
    async with Client(f"{gateway.url}/mcp", mode=mode) as client:
        tools = (await client.list_tools()).tools
        again = (await client.list_tools()).tools
    assert again == tools
    assert (await fast_route(gateway.url)).get("fast", 0.0) > before  # the list stays on the fast path
    names = [t.name for t in tools]
    assert sorted(names[:-1]) == ["alpha_add", "alpha_echo", "beta_echo", "beta_slow"]
    script = tools[-1]
    assert script.name == "execute_tool_script"
    assert script.input_schema["required"] == ["script"]
    assert "  - alpha_add: Add two integers." in (script.description or "")
    assert "beta_add" not in (script.description or "")  # denied by the policies: not offered


@pytest.mark.parametrize("mode", FRONT_MODES)
async def test_a_script_calls_both_backends_in_a_loop_and_in_parallel(gateway: Gateway, mode: str) -> None:
    script = """
echoes = parallel([lambda w=w: call_tool(w + "_echo", message=w) for w in backends])
total = 0
for i in range(1, 4):
    total = alpha_add(a=total, b=i)
print("sum", total)
return {"echoes": echoes, "total": total}
"""
    result = await _script(gateway, mode, script, {"backends": ["alpha", "beta"]})
    assert not result.is_error, _text(result)
    assert json.loads(result.content[0].text) == {"echoes": ["alpha: alpha", "beta: beta"], "total": 6}
    assert result.content[1].text == "Script logs:\nsum 6"
    # each inner call is audited under its own name, as a direct call is
    assert any(r["backendTool"] == "echo" and r["outcome"] == "ok" for r in _audit(gateway, "beta_echo", 1))
    assert len([r for r in _audit(gateway, "alpha_add", 3) if r["outcome"] == "ok"]) >= 3
    assert any(r["outcome"] == "ok" for r in _audit(gateway, "execute_tool_script", 1))
    metrics = httpx2.get(f"{gateway.url}/metrics").text
    assert 'vmcp_code_mode_scripts_total{outcome="ok"}' in metrics
    assert "vmcp_code_mode_script_duration_seconds_count" in metrics
    assert 'mcp_proxy_requests_total{method="tools/call",outcome="ok",tool="alpha_add"}' in metrics


async def test_parallel_runs_its_branches_at_once(gateway: Gateway) -> None:
    """Four calls of one second each, at most four at once: together well under the four seconds that
    one after the other would take."""
    script = "return parallel([lambda: beta_slow(seconds=0.9) for _ in range(4)])"
    start = anyio.current_time()
    result = await _script(gateway, "auto", script)
    elapsed = anyio.current_time() - start
    assert not result.is_error, _text(result)
    assert json.loads(_text(result)) == ["beta: slept 0.9"] * 4
    assert elapsed < 3.0, elapsed


@pytest.mark.parametrize("mode", FRONT_MODES)
async def test_a_denied_call_fails_the_script_at_its_line_and_opens_nothing(
    gateway: Gateway, mode: str
) -> None:
    before = len(_audit(gateway, "beta_add"))
    result = await _script(
        gateway, mode, 'x = alpha_echo(message="first")\nreturn call_tool("beta_add", a=1, b=2)'
    )
    assert result.is_error
    assert _text(result) == "script failed at line 2: tool 'beta_add': Unauthorized"
    denied = _audit(gateway, "beta_add", before + 1)[before:]
    assert [r["outcome"] for r in denied] == ["denied"]
    # a denied tool is not bound by name, and a filtered one answers as a denied one does
    result = await _script(gateway, mode, "return beta_add(a=1, b=2)")
    assert result.is_error and "line 1" in _text(result) and "`beta_add` not found" in _text(result)
    result = await _script(gateway, mode, 'return call_tool("alpha_slow", seconds=0)')
    assert _text(result) == "script failed at line 1: tool 'alpha_slow': Unauthorized"
    result = await _script(gateway, mode, 'return call_tool("no_such_tool")')
    assert _text(result) == "script failed at line 1: tool 'no_such_tool': Unauthorized"  # the same answer
    assert not [r for r in _audit(gateway, "beta_add") if r["outcome"] == "ok"]


@pytest.mark.parametrize("mode", FRONT_MODES)
async def test_limits_stop_runaway_scripts(gateway: Gateway, mode: str) -> None:
    result = await _script(gateway, mode, "n = 0\nfor i in range(100000000):\n    n += i\nreturn n")
    assert result.is_error
    assert _text(result) == "script failed at line 2: step limit exceeded (50000 steps)"
    result = await _script(gateway, mode, "def f(n):\n    return f(n + 1)\nreturn f(0)")
    assert result.is_error and "line 2" in _text(result) and "call stack overflow" in _text(result)
    result = await _script(gateway, mode, 'a = beta_echo(message="x")\nreturn beta_slow(seconds=5)')
    assert _text(result) == "script failed at line 2: tool 'beta_slow' timed out after 1s"
    # past its memory cap the script's process dies; the gateway answers the call and goes on
    result = await _script(gateway, mode, "return len(list(range(100000000)))")
    assert result.is_error and "the interpreter stopped" in _text(result)
    assert _text(await _script(gateway, mode, "return alpha_add(a=1, b=1)")) == "2"
    metrics = httpx2.get(f"{gateway.url}/metrics").text
    assert 'vmcp_code_mode_scripts_total{outcome="error"}' in metrics


async def test_other_clients_are_answered_while_a_script_computes(gateway: Gateway) -> None:
    """A builtin that computes for a second or more without a step (a list of 8 million numbers) runs
    in the script's own process: other clients' calls are answered meanwhile."""
    done: list[str] = []

    async def script() -> None:
        result = await _script(gateway, "auto", "return len(list(range(8000000)))")
        assert _text(result) == "8000000", _text(result)
        done.append("script")

    async def calls() -> None:
        async with Client(f"{gateway.url}/mcp") as client:
            await anyio.sleep(0.3)  # let the script start first
            for i in range(3):
                result = await client.call_tool("alpha_echo", {"message": str(i)})
                assert _text(result) == f"alpha: {i}"
        done.append("calls")

    async with anyio.create_task_group() as tg:
        tg.start_soon(script)
        tg.start_soon(calls)
    assert done == ["calls", "script"]


@pytest.mark.parametrize("mode", FRONT_MODES)
async def test_errors_are_tool_results_naming_the_line(gateway: Gateway, mode: str) -> None:
    result = await _script(gateway, mode, "x = 1\nif x\n    return 2")
    assert result.is_error
    assert _text(result).startswith("syntax error at line 2, column 5: Parse error")
    result = await _script(gateway, mode, 'x = {}\n\nreturn x["missing"]')
    assert _text(result) == 'script failed at line 3: Key `"missing"` was not found'
    result = await _script(gateway, mode, "return parallel([lambda: 1, lambda: alpha_add(a=1)])")
    assert result.is_error and "parallel() branch 1: failed at line 1" in _text(result)
    async with Client(f"{gateway.url}/mcp", mode=mode) as client:
        result = await client.call_tool("execute_tool_script", {"data": {"x": 1}})
        assert result.is_error
        assert "requires a non-empty 'script' string argument" in _text(result)
        result = await client.call_tool(
            "execute_tool_script", {"script": "return 1", "data": {"alpha_add": 1}}
        )
        assert "conflicts with a builtin or tool name" in _text(result)


async def test_with_the_optimizer_find_tool_finds_it_and_call_tool_runs_it(gateway: Gateway) -> None:
    try:
        gateway.reconfigure(optimizer=True)
        async with Client(f"{gateway.url}/mcp") as client:
            assert sorted(t.name for t in (await client.list_tools()).tools) == ["call_tool", "find_tool"]
            found = await client.call_tool("find_tool", {"tool_description": "execute a Starlark script"})
            tools = json.loads(_text(found))["tools"]
            assert tools[0]["name"] == "execute_tool_script"
            assert "beta_add" not in tools[0]["description"]
            arguments = {"script": "return alpha_add(a=2, b=3)"}
            result = await client.call_tool(
                "call_tool", {"tool_name": "execute_tool_script", "parameters": arguments}
            )
            assert _text(result) == "5"
    finally:
        gateway.reconfigure()


async def test_a_reload_turns_code_mode_off_and_on(gateway: Gateway) -> None:
    try:
        gateway.reconfigure(code_mode=False)
        async with Client(f"{gateway.url}/mcp") as client:
            assert "execute_tool_script" not in [t.name for t in (await client.list_tools()).tools]
            with pytest.raises(MCPError) as caught:
                await client.call_tool("execute_tool_script", {"script": "return 1"})
        assert caught.value.error.code == 403  # an unknown tool under policies
    finally:
        gateway.reconfigure()
    result = await _script(gateway, "legacy", "return 1")
    assert _text(result) == "1"


async def test_a_script_past_its_deadline_is_stopped_in_whatever_it_is_doing() -> None:
    """The runner alone (a real child process, calls answered by a stand-in): the whole-script deadline
    ends a script waiting on a call and one computing (a step limit too high to stop it), and the
    runner serves the next."""
    runner = ScriptRunner()
    limits = Limits(step_limit=10**12, tool_call_timeout=30, script_timeout=1)

    async def sleepy(name: str, arguments: dict[str, Any]) -> Any:
        await anyio.sleep(10)

    try:
        waiting = await runner.run("return wait()", {}, {"wait": "wait"}, limits, sleepy)
        assert waiting == error_result("script stopped: it ran longer than 1s")
        computing = await runner.run("for i in range(1000000000):\n    pass", {}, {}, limits, sleepy)
        assert computing == error_result("script stopped: it ran longer than 1s")
        quick = await runner.run("return 2", {}, {}, Limits(), sleepy)
        assert quick == {"content": [{"type": "text", "text": "2"}], "isError": False}
    finally:
        await runner.aclose()


async def test_a_scripts_calls_take_rate_limit_tokens_as_direct_calls_do(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """``rateLimiting`` counts each tool call of a script, sharing the buckets with direct calls."""
    limits = {"tools": [{"name": "alpha_add", "perUser": {"maxTokens": 2, "refillPeriod": "1h"}}]}

    def limited(ports: dict[str, int], **options: bool) -> dict[str, Any]:
        return {**_config(ports, **options), "rateLimiting": limits}

    with gp.fixture_gateway(tmp_path_factory.mktemp("vmcp-codemode-ratelimit"), limited) as limited_gateway:
        result = await _script(limited_gateway, "auto", "return [alpha_add(a=1, b=i) for i in range(3)]")
        assert result.is_error
        assert _text(result).startswith(
            "script failed at line 1: tool 'alpha_add': Rate limit exceeded (retry after "
        )
        outcomes = [r["outcome"] for r in _audit(limited_gateway, "alpha_add", 3)]
        assert outcomes == ["ok", "ok", "rate_limited"]
        with pytest.raises(BaseException) as caught:  # the script used the caller's tokens: none left
            async with Client(f"{limited_gateway.url}/mcp") as client:
                await client.call_tool("alpha_add", {"a": 1, "b": 1})
        error = caught.value
        while isinstance(error, BaseExceptionGroup):  # the client's task group wraps the MCPError
            error = error.exceptions[0]
        assert isinstance(error, MCPError) and error.error.code == 429
