"""The virtual MCP gateway over real backends: mcp-server-time and mcp-server-git (stdio, behind the
project's proxy), server-everything (legacy SSE), server-memory (stdio, behind the proxy) and the fixture
server, whose ``echo`` collides with server-everything's.

One gateway process (``mcp-operator vmcp``) serves the module; each test rewrites its config file and
waits for the hot reload, which is itself part of what is tested.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.shared.exceptions import MCPError

from tests.support.gateway_processes import (
    BIN,
    NPM_BIN,
    Proc,
    fixture_server,
    free_port,
    get_json,
    proxied_stdio,
    start,
    wait_http,
    wait_until,
    write_config,
)
from tests.support.processes import json_records

pytestmark = pytest.mark.slow

FRONT_MODES = ["auto", "legacy", "sse"]  # modern streamable HTTP, legacy streamable HTTP, legacy HTTP+SSE


@dataclass
class Stack:
    urls: dict[str, str]
    transports: dict[str, str]
    gateway: str
    config_path: Path
    logdir: Path
    procs: dict[str, Proc] = field(default_factory=dict)
    direct_tools: dict[str, list[str]] = field(default_factory=dict)
    written: dict[str, Any] = field(default_factory=dict)
    """The config written last (the gateway does not re-apply the config it runs)."""

    def backends(self, *names: str) -> list[dict[str, str]]:
        return [{"name": n, "url": self.urls[n], "transport": self.transports[n]} for n in names or self.urls]

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = get_json(f"{self.gateway}/status")
        return result

    def configure(self, backends: list[dict[str, str]] | None = None, **aggregation: Any) -> dict[str, Any]:
        """Write a new config and wait until the gateway applied it and every backend is connected."""
        before = self.status()["reloads"]
        config = {
            "name": "gw",
            "backends": backends if backends is not None else self.backends(),
            "aggregation": aggregation,
            "operational": {
                "timeouts": {"call": "20s", "list": "10s", "connect": "20s"},
                "failureHandling": {
                    "healthCheckInterval": "500ms",
                    "healthCheckTimeout": "5s",
                    "partialFailureMode": "best_effort",  # a dead backend's test lists the others
                    "circuitBreaker": {"enabled": True, "failureThreshold": 2, "timeout": "1s"},
                },
            },
        }
        write_config(self.config_path, config)
        if config != self.written:
            wait_until(lambda: self.status()["reloads"] > before, what="config reload")
        self.written = config
        names = {b["name"] for b in config["backends"]}
        return wait_until(
            lambda: (
                (s := self.status())["phase"] == "Ready" and {b["name"] for b in s["backends"]} == names and s
            ),
            what="all backends ready",
        )


def _git_repo(path: Path) -> Path:
    path.mkdir()
    for args in (["init", "-q"], ["config", "user.email", "t@example.com"], ["config", "user.name", "t"]):
        subprocess.run(["git", *args], cwd=path, check=True)
    (path / "README").write_text("hello\n")
    subprocess.run(["git", "add", "README"], cwd=path, check=True)
    subprocess.run(["git", "commit", "-qm", "first"], cwd=path, check=True)
    return path


async def _list_direct(url: str, transport: str) -> list[str]:
    target: Any = sse_client(url) if transport == "sse" else url
    async with Client(target, mode="legacy" if transport == "sse" else "auto") as client:
        return sorted(t.name for t in (await client.list_tools()).tools)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    logdir = tmp_path_factory.mktemp("vmcp")
    ports = {n: free_port() for n in ("fixture", "everything", "time", "git", "memory", "gateway")}
    procs: dict[str, Proc] = {}
    try:
        procs["everything"] = start(
            "everything",
            [str(NPM_BIN / "mcp-server-everything"), "sse"],
            logdir,
            {"PORT": str(ports["everything"])},
        )
        procs["time"] = proxied_stdio(
            "time", ports["time"], [str(BIN / "mcp-server-time"), "--local-timezone", "UTC"], logdir
        )
        repo = _git_repo(logdir / "repo")
        procs["git"] = proxied_stdio(
            "git", ports["git"], [str(BIN / "mcp-server-git"), "--repository", str(repo)], logdir
        )
        procs["memory"] = proxied_stdio(
            "memory",
            ports["memory"],
            [str(NPM_BIN / "mcp-server-memory")],
            logdir,
            {"MEMORY_FILE_PATH": str(logdir / "memory.jsonl")},
        )
        procs["fixture"] = fixture_server("fixture", ports["fixture"], logdir)
        wait_http(f"http://127.0.0.1:{ports['everything']}/sse", procs["everything"])
        urls = {n: f"http://127.0.0.1:{ports[n]}/mcp" for n in ("fixture", "time", "git", "memory")}
        urls["everything"] = f"http://127.0.0.1:{ports['everything']}/sse"
        transports = {n: "sse" if n == "everything" else "streamable-http" for n in urls}
        config_path = logdir / "vmcp.yaml"
        gateway_url = f"http://127.0.0.1:{ports['gateway']}"
        stack = Stack(urls, transports, gateway_url, config_path, logdir, procs)
        write_config(config_path, {"name": "gw", "backends": []})
        procs["gateway"] = start(
            "gateway",
            [
                str(BIN / "mcp-operator"),
                "vmcp",
                "--port",
                str(ports["gateway"]),
                "--config",
                str(config_path),
                "--reload-interval",
                "0.2",
            ],
            logdir,
        )
        wait_http(f"{gateway_url}/health", procs["gateway"])
        stack.direct_tools = {n: anyio.run(_list_direct, urls[n], transports[n]) for n in urls}
        yield stack
    finally:
        for proc in procs.values():
            proc.stop()


async def _gateway_client_call(
    stack: Stack, mode: str, calls: list[tuple[str, dict[str, Any]]]
) -> tuple[list[str], list[str]]:
    """(tool names listed, text of each call's result) through the gateway on one front era."""
    target: Any = sse_client(f"{stack.gateway}/sse") if mode == "sse" else f"{stack.gateway}/mcp"
    async with Client(target, mode="legacy" if mode == "sse" else mode) as client:
        names = sorted(t.name for t in (await client.list_tools()).tools)
        texts = []
        for name, args in calls:
            result = await client.call_tool(name, args)
            text = "".join(getattr(c, "text", "") for c in result.content)
            texts.append(("ERROR " if result.is_error else "") + text)
        return names, texts


def routing_calls(stack: Stack) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("fixture_echo", {"message": "hi"}),
        ("everything_echo", {"message": "hi"}),
        ("time_get_current_time", {"timezone": "UTC"}),
        ("git_git_status", {"repo_path": str(stack.logdir / "repo")}),
        ("memory_read_graph", {}),
        ("fixture_add", {"a": 2, "b": 3}),
    ]


@pytest.mark.parametrize("mode", FRONT_MODES)
async def test_prefix_lists_every_backend_tool_prefixed_and_routes_each_call(stack: Stack, mode: str) -> None:
    status = await anyio.to_thread.run_sync(stack.configure)
    expected = sorted(f"{b}_{t}" for b, tools in stack.direct_tools.items() for t in tools)
    names, texts = await _gateway_client_call(stack, mode, routing_calls(stack))
    assert names == expected
    assert {"fixture_echo", "everything_echo"} <= set(names)
    assert texts[0] == "fixture: hi"
    assert texts[1] == "Echo: hi"
    assert "UTC" in texts[2]
    assert "branch" in texts[3].lower() and not texts[3].startswith("ERROR")
    assert "entities" in texts[4]
    assert texts[5] == "5"
    assert status["conflicts"] == []
    assert {b["name"]: b["toolCount"] for b in status["backends"]} == {
        b: len(t) for b, t in stack.direct_tools.items()
    }


async def test_priority_first_backend_wins_and_the_loser_is_reported(stack: Stack) -> None:
    status = await anyio.to_thread.run_sync(
        lambda: stack.configure(
            conflictResolution="priority",
            conflictResolutionConfig={"priorityOrder": ["fixture", "everything"]},
        )
    )
    names, texts = await _gateway_client_call(
        stack, "auto", [("echo", {"message": "p"}), ("get-sum", {"a": 1, "b": 2})]
    )
    expected = sorted({t for tools in stack.direct_tools.values() for t in tools})
    assert names == expected
    assert texts[0] == "fixture: p"
    assert "3" in texts[1]
    assert (
        "tool 'echo' is offered by fixture, everything: fixture wins, dropped everything"
        in status["conflicts"]
    )

    await anyio.to_thread.run_sync(
        lambda: stack.configure(
            conflictResolution="priority",
            conflictResolutionConfig={"priorityOrder": ["everything", "fixture"]},
        )
    )
    _, texts = await _gateway_client_call(stack, "legacy", [("echo", {"message": "p"})])
    assert texts == ["Echo: p"]


async def test_manual_overrides_resolve_the_collision_and_unresolved_ones_are_reported(stack: Stack) -> None:
    status = await anyio.to_thread.run_sync(lambda: stack.configure(conflictResolution="manual"))
    names, _ = await _gateway_client_call(stack, "auto", [])
    assert "echo" not in names
    assert "tool 'echo' is offered by everything, fixture: unresolved, none exposed" in status["conflicts"]

    status = await anyio.to_thread.run_sync(
        lambda: stack.configure(
            conflictResolution="manual",
            tools=[
                {
                    "workload": "fixture",
                    "overrides": {"echo": {"name": "fixture_echo", "description": "Ours"}},
                }
            ],
        )
    )
    names, texts = await _gateway_client_call(
        stack, "legacy", [("echo", {"message": "m"}), ("fixture_echo", {"message": "m"})]
    )
    assert {"echo", "fixture_echo"} <= set(names)
    assert texts == ["Echo: m", "fixture: m"]
    assert not [c for c in status["conflicts"] if c.startswith("tool ")]


async def test_filters_hide_and_block_tools(stack: Stack) -> None:
    await anyio.to_thread.run_sync(
        lambda: stack.configure(tools=[{"workload": "git", "filter": ["git_status", "git_log"]}])
    )
    names, _ = await _gateway_client_call(stack, "auto", [])
    assert sorted(n for n in names if n.startswith("git_")) == ["git_git_log", "git_git_status"]
    assert await _call_error(stack, "git_git_diff_unstaged", {"repo_path": "."}) == (
        "Unknown tool: git_git_diff_unstaged"
    )


async def _call_error(stack: Stack, tool: str, args: dict[str, Any]) -> str:
    """The protocol error the gateway answers a call with (fails when the call succeeds)."""
    try:
        async with Client(f"{stack.gateway}/mcp") as client:
            await client.call_tool(tool, args)
    except BaseException as exc:  # the client's task group wraps the MCPError
        while isinstance(exc, BaseExceptionGroup):
            exc = exc.exceptions[0]
        if isinstance(exc, MCPError):
            return exc.message
        raise
    raise AssertionError(f"calling {tool} succeeded")


def _spare_unavailable(status: dict[str, Any]) -> dict[str, Any] | None:
    down = any(b["name"] == "spare" and b["health"] == "unavailable" for b in status["backends"])
    return status if down else None


async def test_a_dead_backend_degrades_the_gateway_and_it_recovers_when_the_backend_returns(
    stack: Stack,
) -> None:
    port = free_port()
    spare = fixture_server("spare", port, stack.logdir)
    stack.procs["spare"] = spare
    stack.urls["spare"], stack.transports["spare"] = f"http://127.0.0.1:{port}/mcp", "streamable-http"
    try:
        await anyio.to_thread.run_sync(
            lambda: stack.configure(stack.backends("fixture", "everything", "spare"))
        )
        spare.stop()
        # Each failure counts (degraded) until unhealthyThreshold of them make it unavailable.
        status = await anyio.to_thread.run_sync(
            lambda: wait_until(lambda: _spare_unavailable(stack.status()), what="spare down")
        )
        dead = next(b for b in status["backends"] if b["name"] == "spare")
        assert status["phase"] == "Degraded" and dead["lastError"]
        names, texts = await _gateway_client_call(stack, "auto", [("fixture_echo", {"message": "alive"})])
        assert texts == ["fixture: alive"]
        assert "everything_echo" in names
        # A dead backend's tools are withdrawn until it is back; calling one is refused at once.
        assert not [n for n in names if n.startswith("spare_")]
        refusal = await _call_error(stack, "spare_echo", {"message": "x"})
        assert refusal.startswith("backend 'spare' is unavailable (")

        stack.procs["spare"] = fixture_server("spare", port, stack.logdir)
        await anyio.to_thread.run_sync(
            lambda: wait_until(lambda: stack.status()["phase"] == "Ready", what="Ready again")
        )
        _, texts = await _gateway_client_call(stack, "legacy", [("spare_echo", {"message": "back"})])
        assert texts == ["spare: back"]
    finally:
        stack.procs.pop("spare").stop()
        del stack.urls["spare"], stack.transports["spare"]


async def test_a_reload_adds_and_removes_backends_without_dropping_calls_in_flight(stack: Stack) -> None:
    ports = {"old": free_port(), "new": free_port()}
    for name, port in ports.items():
        stack.procs[name] = fixture_server(name, port, stack.logdir)
        stack.urls[name], stack.transports[name] = f"http://127.0.0.1:{port}/mcp", "streamable-http"
    try:
        await anyio.to_thread.run_sync(lambda: stack.configure(stack.backends("fixture", "old")))
        results: dict[str, list[str]] = {}

        async def slow_call() -> None:
            _, results["old"] = await _gateway_client_call(stack, "auto", [("old_slow", {"seconds": 3})])

        async with anyio.create_task_group() as tg:
            tg.start_soon(slow_call)
            await anyio.sleep(1.0)  # the call is on its way to "old" when the config drops it
            await anyio.to_thread.run_sync(lambda: stack.configure(stack.backends("fixture", "new")))
            names, texts = await _gateway_client_call(stack, "auto", [("new_echo", {"message": "n"})])
        assert results["old"] == ["old: slept 3.0"]
        assert "new_echo" in names and not any(n.startswith("old_") for n in names)
        assert texts == ["new: n"]
    finally:
        for name in ports:
            stack.procs.pop(name).stop()
            del stack.urls[name], stack.transports[name]


async def _fastmcp_tool_names(stack: Stack) -> list[str]:
    """The oracle: fastmcp's composition (mount with namespace) over the same backends, listed in-process."""
    import fastmcp  # noqa: PLC0415 - a test oracle only, never imported by the product
    from fastmcp.server import create_proxy  # noqa: PLC0415

    composite = fastmcp.FastMCP("oracle")
    for name, url in sorted(stack.urls.items()):
        # mode="auto": without it fastmcp mirrors the front's era onto legacy-only backends (see docs/vmcp.md)
        composite.mount(create_proxy(url, mode="auto"), namespace=name)
    async with fastmcp.Client(composite) as client:
        return sorted(t.name for t in await client.list_tools())


async def test_prefix_agrees_with_fastmcp_namespaced_mounts(stack: Stack) -> None:
    await anyio.to_thread.run_sync(stack.configure)
    ours, _ = await _gateway_client_call(stack, "auto", [])
    theirs = await _fastmcp_tool_names(stack)
    # Documented difference (docs/vmcp.md): fastmcp's proxy client advertises sampling, elicitation and
    # roots, so server-everything adds tools that it hides from a client (like ours) that does not.
    capability_gated = {
        "everything_get-roots-list",
        "everything_trigger-elicitation-request",
        "everything_trigger-sampling-request",
        "everything_trigger-url-elicitation",
    }
    assert sorted(set(theirs) - capability_gated) == ours
    assert set(ours) <= set(theirs)


async def test_a_call_through_the_gateway_is_audited_and_counted_as_in_the_proxy(stack: Stack) -> None:
    await anyio.to_thread.run_sync(lambda: stack.configure(stack.backends("fixture")))
    _, texts = await _gateway_client_call(stack, "auto", [("fixture_echo", {"message": "audited"})])
    assert texts == ["fixture: audited"]
    assert await _call_error(stack, "fixture_nope", {}) == "Unknown tool: fixture_nope"

    def audit() -> dict[str, dict[str, Any]]:
        """The gateway's audit lines by tool, once both calls' lines are written."""
        lines = stack.procs["gateway"].log.read_text(errors="replace")
        records = [r for r in json_records(lines) if r.get("event") == "tools/call"]
        by_tool = {r["tool"]: r for r in records}
        return by_tool if {"fixture_echo", "fixture_nope"} <= by_tool.keys() else {}

    records = await anyio.to_thread.run_sync(lambda: wait_until(audit, what="the audit lines"))
    echo, denied = records["fixture_echo"], records["fixture_nope"]
    assert (echo["backendTool"], echo["outcome"], echo["caller"]) == ("echo", "ok", "127.0.0.1")
    assert echo["durationMs"] > 0
    assert (denied["backendTool"], denied["outcome"]) == (None, "denied")

    metrics = httpx2.get(f"{stack.gateway}/metrics").text
    assert 'mcp_proxy_requests_total{method="tools/call",outcome="ok",tool="fixture_echo"}' in metrics
    assert 'mcp_proxy_requests_total{method="tools/call",outcome="denied",tool=""}' in metrics
    assert 'mcp_proxy_request_duration_seconds_count{method="tools/list"}' in metrics
