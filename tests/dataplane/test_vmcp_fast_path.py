"""The gateway's fast path against its SDK path, on real fixture servers: a client of either era sees the
same lists, results and errors from both, and the fast path really serves them (its counter).

Two gateways over the same two backends run side by side: ``mcp-operator vmcp`` (fast path on, as in
the cluster) and the same app built with ``fast_path=False``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from hack.benchmarks.proxy_bench import fast_path_counts
from tests.support.gateway_processes import BIN, SDK_PATH_GATEWAY, free_port, start, wait_http, write_config

pytestmark = pytest.mark.slow

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "mcp_fixture_server.py"


@pytest.fixture(scope="module")
def gateways(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    logdir = tmp_path_factory.mktemp("fast-path")
    procs = []
    try:
        backends = []
        for name in ("a", "b"):
            port = free_port()
            procs.append(start(name, [sys.executable, str(FIXTURE), "streamable-http", str(port)], logdir))
            url = f"http://127.0.0.1:{port}/mcp"
            wait_http(url, procs[-1])
            backends.append({"name": name, "url": url})
        config = logdir / "vmcp.yaml"
        write_config(config, {"name": "fast", "backends": backends})
        urls = {}
        for mode, argv in {
            "fast": [str(BIN / "mcp-operator"), "vmcp", "--port", "{port}", "--config", str(config)],
            "sdk": [sys.executable, "-c", SDK_PATH_GATEWAY, "{port}", str(config)],
        }.items():
            port = free_port()
            procs.append(start(f"gateway-{mode}", [a.replace("{port}", str(port)) for a in argv], logdir))
            urls[mode] = f"http://127.0.0.1:{port}"
            wait_http(f"{urls[mode]}/readyz", procs[-1])
        yield urls
    finally:
        for proc in procs:
            proc.stop()


async def _session(url: str, mode: str) -> dict[str, Any]:
    """What one client session sees: lists, results and errors, as plain data."""
    seen: dict[str, Any] = {}
    async with Client(f"{url}/mcp", mode=mode) as client:
        tools = (await client.list_tools()).tools
        seen["tools"] = sorted(t.model_dump(mode="json", exclude_none=True)["name"] for t in tools)
        seen["schema"] = next(t.input_schema for t in tools if t.name == "b_add")
        seen["prompts"] = sorted(p.name for p in (await client.list_prompts()).prompts)
        seen["resources"] = sorted(str(r.uri) for r in (await client.list_resources()).resources)
        for name, arguments in (
            ("a_echo", {"text": "hello"}),
            ("b_add", {"a": 2, "b": 3}),
            ("a_test_multiple_content_types", {}),
            ("b_test_error_handling", {}),
        ):
            result = await client.call_tool(name, arguments)
            seen[name] = result.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"meta"})
        prompt = await client.get_prompt("a_test_prompt_with_arguments", {"arg1": "x", "arg2": "y"})
        seen["prompt"] = prompt.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"meta"})
        read = await client.read_resource("test://static-text")
        seen["read"] = read.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"meta"})
        for label, call in (
            ("unknown tool", client.call_tool("nope_echo", {})),
            ("unknown prompt", client.get_prompt("nope")),
        ):
            try:
                await call
                seen[label] = "no error"
            except MCPError as exc:
                seen[label] = (exc.error.code, exc.error.message)
    return seen


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_both_paths_answer_alike_and_the_fast_path_serves_the_requests(
    gateways: dict[str, str], mode: str
) -> None:
    before = fast_path_counts(gateways["fast"]).get("fast", 0.0)
    fast = await _session(gateways["fast"], mode)
    sdk = await _session(gateways["sdk"], mode)
    assert fast == sdk
    assert fast["a_echo"]["content"] == [{"type": "text", "text": "hello"}]
    assert fast["b_add"]["content"] == [{"type": "text", "text": "5"}]
    assert fast["b_test_error_handling"]["isError"] is True
    assert fast["unknown tool"][1] == "Unknown tool: nope_echo"
    assert "a_echo" in fast["tools"] and "b_echo" in fast["tools"]
    # 3 lists, 4 calls, one get and one read went the fast way (the unknown names declined).
    assert fast_path_counts(gateways["fast"]).get("fast", 0.0) - before >= 9
    assert fast_path_counts(gateways["sdk"]).get("fast", 0.0) == 0.0
