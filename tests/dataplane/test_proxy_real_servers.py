"""Real MCP servers behind the proxy: tools/list and tools/call equal the direct results.

Every front is exercised: /mcp in the 2026-07-28 era (``mode="2026-07-28"`` is what ``auto`` picks against
our proxy), /mcp in the 2025-11-25 session era, and legacy /sse. The direct client advertises the same
client capabilities the proxy advertises to its backend (sampling, elicitation, roots), because
server-everything lists more tools to clients that have them.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.sse import sse_client

from tests.dataplane.proxyutil import FIXTURE_CMD, NPM_BIN, VENV_BIN, free_port, proxy_in_process, run_server

pytestmark = pytest.mark.slow

LONG_RUNNING = "trigger-long-running-operation"
NODE_ENV = {"PATH": f"{NPM_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


async def _sampling(_: Any, __: Any) -> types.CreateMessageResult:
    return types.CreateMessageResult(
        role="assistant", content=types.TextContent(type="text", text="ok"), model="test"
    )


async def _elicit(_: Any, __: Any) -> types.ElicitResult:
    return types.ElicitResult(action="decline")


async def _roots(_: Any) -> types.ListRootsResult:
    return types.ListRootsResult(roots=[])


CAPS: dict[str, Any] = {
    "sampling_callback": _sampling,
    "elicitation_callback": _elicit,
    "list_roots_callback": _roots,
}


def _tools(result: types.ListToolsResult) -> list[dict[str, Any]]:
    return sorted(
        (t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in result.tools),
        key=lambda t: t["name"],
    )


# Tool fields the 2026-07-28 revision removed (tasks): a modern-era client never sees them, direct or not.
_LEGACY_ONLY_TOOL_FIELDS = ("execution",)


def _modern_view(observed: Any) -> Any:
    tools, call = observed
    return [{k: v for k, v in t.items() if k not in _LEGACY_ONLY_TOOL_FIELDS} for t in tools], call


def _content(result: types.CallToolResult) -> list[dict[str, Any]]:
    return [c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in result.content]


async def _observe(client: Client, call: tuple[str, dict[str, Any]]) -> tuple[list[dict[str, Any]], Any]:
    tools = _tools(await client.list_tools())
    result = await client.call_tool(*call)
    return tools, (_content(result), result.is_error)


async def _through_proxy(base: str, call: tuple[str, dict[str, Any]]) -> list[tuple[str, Any]]:
    observed = []
    async with Client(f"{base}/mcp", mode="auto", **CAPS) as client:
        observed.append(("mcp-modern", await _observe(client, call)))
    async with Client(f"{base}/mcp", mode="legacy", **CAPS) as client:
        observed.append(("mcp-legacy", await _observe(client, call)))
    async with Client(sse_client(f"{base}/sse"), mode="legacy", **CAPS) as client:
        observed.append(("sse", await _observe(client, call)))
    return observed


async def _assert_equal_through_proxy(
    command: list[str], call: tuple[str, dict[str, Any]], env: dict[str, str]
) -> None:
    params = StdioServerParameters(command=command[0], args=command[1:], env=env or None)
    async with Client(params, mode="auto", **CAPS) as direct:
        expected = await _observe(direct, call)
    assert expected[0], "the direct server listed no tools"
    async with proxy_in_process({"type": "stdio", "command": command, "env": env}) as base:
        for front, observed in await _through_proxy(base, call):
            _assert_same(front, observed, expected)


def _assert_same(front: str, observed: Any, expected: Any) -> None:
    if front == "mcp-modern":
        observed, expected = _modern_view(observed), _modern_view(expected)
    assert observed == expected, f"{front}: proxy result differs from the direct result"


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "hello.txt").write_text("hello\n")
    return repo


async def test_mcp_server_time() -> None:
    call = ("convert_time", {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"})
    await _assert_equal_through_proxy(
        [str(VENV_BIN / "mcp-server-time"), "--local-timezone", "UTC"], call, {}
    )


async def test_mcp_server_git(git_repo: Path) -> None:
    call = ("git_status", {"repo_path": str(git_repo)})
    await _assert_equal_through_proxy(
        [str(VENV_BIN / "mcp-server-git"), "--repository", str(git_repo)], call, {}
    )


async def test_server_everything_stdio() -> None:
    call = ("get-sum", {"a": 2, "b": 40})
    await _assert_equal_through_proxy([str(NPM_BIN / "mcp-server-everything")], call, NODE_ENV)


async def test_fixture_server_stdio() -> None:
    await _assert_equal_through_proxy(FIXTURE_CMD, ("add", {"a": 1, "b": 2}), {})


@pytest.mark.parametrize(
    ("mode", "path", "transport"), [("streamableHttp", "/mcp", "streamable-http"), ("sse", "/sse", "sse")]
)
async def test_server_everything_over_http(mode: str, path: str, transport: str) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}{path}"
    env = {**NODE_ENV, "PORT": str(port)}
    call = ("echo", {"message": "through the proxy"})
    with run_server([str(NPM_BIN / "mcp-server-everything"), mode], f"http://127.0.0.1:{port}/", env=env):
        target = url if transport == "streamable-http" else sse_client(url)
        async with Client(target, mode="legacy", **CAPS) as direct:
            expected = await _observe(direct, call)
        async with proxy_in_process({"type": "http", "url": url, "transport": transport}) as base:
            for front, observed in await _through_proxy(base, call):
                _assert_same(front, observed, expected)


async def test_server_everything_progress_and_cancellation(tmp_path: Path) -> None:
    """trigger-long-running-operation: progress reaches the caller; a cancelled call reaches the server
    as ``notifications/cancelled`` (the server's stdin is teed to a file to observe it)."""
    stdin_log = tmp_path / "stdin.jsonl"
    server = f"tee -a {stdin_log} | exec {NPM_BIN / 'mcp-server-everything'}"
    async with proxy_in_process({"type": "stdio", "command": ["sh", "-c", server], "env": NODE_ENV}) as base:
        for front, connect in _front_clients(base):
            seen: list[tuple[float, float | None]] = []

            async def on_progress(progress: float, total: float | None, _: str | None) -> None:
                seen.append((progress, total))  # noqa: B023 (consumed before the next iteration)

            async with connect() as client:
                args = {"duration": 0.5, "steps": 5}
                result = await client.call_tool(
                    "trigger-long-running-operation", args, progress_callback=on_progress
                )
                assert "Duration: 0.5 seconds, Steps: 5" in _content(result)[0]["text"], front
                assert seen == [(float(i), 5.0) for i in range(1, 6)], front
                before = _cancellations(stdin_log)
                with anyio.move_on_after(1.0):
                    await client.call_tool(LONG_RUNNING, {"duration": 30, "steps": 30})
                with anyio.fail_after(10):
                    while _cancellations(stdin_log) == before:  # noqa: ASYNC110 (another process writes it)
                        await anyio.sleep(0.05)
                echoed = await client.call_tool("echo", {"message": front})
                assert _content(echoed)[0]["text"] == f"Echo: {front}", front


def _front_clients(base: str) -> list[tuple[str, Any]]:
    return [
        ("mcp-modern", lambda: Client(f"{base}/mcp", mode="auto", **CAPS)),
        ("mcp-legacy", lambda: Client(f"{base}/mcp", mode="legacy", **CAPS)),
        ("sse", lambda: Client(sse_client(f"{base}/sse"), mode="legacy", **CAPS)),
    ]


def _cancellations(stdin_log: Path) -> int:
    if not stdin_log.exists():
        return 0
    lines = stdin_log.read_text(encoding="utf-8").splitlines()
    return sum(1 for line in lines if '"notifications/cancelled"' in line)
