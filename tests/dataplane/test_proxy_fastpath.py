"""The proxy's fast path (``gateway.fastpath``) against the in-repo fixture server over stdio.

Two proxies run in this event loop with the same config: one with the fast path (the default) and one
with every request on the SDK's server path (``build_proxy_app(fast_path=False)``). The same raw
2026-07-28 requests, eligible or not, must get the same HTTP status and the same JSON-RPC body from
both; ``mcp_proxy_fast_path_requests_total`` shows which path served them. The SDK client's results
through the fast proxy equal the fixture's own (served directly over streamable HTTP) in both eras.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client

from api.proxy_config import ProxyConfig
from gateway.proxy import ProxyRuntime, build_proxy_app
from gateway.transports import describe_backend, transport_for
from tests.dataplane.proxyutil import FIXTURE, FIXTURE_CMD, free_port, run_server, serve_asgi

pytestmark = pytest.mark.slow

ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "fastpath-test", "version": "0"},
    "io.modelcontextprotocol/clientCapabilities": {},
}
HEADERS = {
    "accept": "application/json, text/event-stream",
    "content-type": "application/json",
    "mcp-protocol-version": "2026-07-28",
}
NAMED = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}


def config(cancel_file: Path) -> dict[str, Any]:
    return {
        "name": "fixture-proxy",
        "backend": {
            "type": "stdio",
            "command": FIXTURE_CMD,
            "env": {"FIXTURE_CANCEL_FILE": str(cancel_file)},
        },
        "toolFilter": {
            "deny": ["test_error_handling"],
            "overrides": {"add": {"name": "plus", "description": "Adds two integers (renamed)."}},
        },
        "limits": {"maxBodyBytes": 64 * 1024},
    }


@contextlib.asynccontextmanager
async def proxies(raw_config: dict[str, Any]) -> AsyncIterator[tuple[str, str]]:
    """``(fast, sdk)`` base URLs: the same proxy with and without the fast path, in this event loop."""
    runtimes: list[ProxyRuntime] = []
    served = []
    for fast_path in (True, False):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        proxy_config = ProxyConfig.model_validate({**raw_config, "port": sock.getsockname()[1]})
        backend = proxy_config.backend
        app, runtime = build_proxy_app(
            proxy_config, transport_for(backend), description=describe_backend(backend), fast_path=fast_path
        )
        runtimes.append(runtime)
        served.append((sock, app))
    async with serve_asgi(*served):
        deadline = time.monotonic() + 90
        while not all(r.backend.ready for r in runtimes):
            assert time.monotonic() < deadline, [r.backend.readiness()[1] for r in runtimes]
            await asyncio.sleep(0.05)
        fast, sdk = (f"http://127.0.0.1:{sock.getsockname()[1]}" for sock, _ in served)
        yield fast, sdk


def request(method: str, params: dict[str, Any], **meta: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """A raw 2026-07-28 request body and its routing headers."""
    body = {"jsonrpc": "2.0", "id": 41, "method": method, "params": {**params, "_meta": {**ENVELOPE, **meta}}}
    headers = {**HEADERS, "mcp-method": method}
    if method in NAMED:
        headers["mcp-name"] = str(params[NAMED[method]])
    return body, headers


async def fast_route(base: str) -> dict[str, float]:
    """``mcp_proxy_fast_path_requests_total`` by route (the proxy runs in this loop: an async GET)."""
    async with httpx2.AsyncClient() as http:
        text = (await http.get(f"{base}/metrics")).text
    prefix = "mcp_proxy_fast_path_requests_total{"
    return {
        line.split('"')[1]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(prefix)
    }


async def answer(http: httpx2.AsyncClient, base: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
    response = await http.post(f"{base}/mcp", content=json.dumps(body), headers=headers)
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        events = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
        return response.status_code, [json.loads(e) for e in events]
    return response.status_code, response.json() if response.content else None


FAST = [
    request("tools/list", {}),
    request("tools/call", {"name": "echo", "arguments": {"text": "hi"}}),
    request("tools/call", {"name": "plus", "arguments": {"a": 2, "b": 3}}),  # renamed
    request("tools/call", {"name": "no_such_tool", "arguments": {}}),  # the backend's answer
    request("tools/call", {"name": "echo", "arguments": {"text": 7}}),  # the backend validates
    request("tools/call", {"name": "test_multiple_content_types", "arguments": {}}),
    request("resources/list", {}),
    request("resources/templates/list", {}),
    request("resources/read", {"uri": "test://static-text"}),
    request("resources/read", {"uri": "test://no-such-resource"}),
    request("prompts/list", {}),
    request("prompts/get", {"name": "test_prompt_with_arguments", "arguments": {"arg1": "a", "arg2": "b"}}),
    request(
        "completion/complete",
        {
            "ref": {"type": "ref/prompt", "name": "test_prompt_with_arguments"},
            "argument": {"name": "arg1", "value": "b"},
        },
    ),
]
"""Requests the fast path serves."""


def _mismatched_name() -> tuple[dict[str, Any], dict[str, str]]:
    body, headers = request("tools/call", {"name": "echo", "arguments": {"text": "x"}})
    return body, {**headers, "mcp-name": "other"}


def _no_envelope() -> tuple[dict[str, Any], dict[str, str]]:
    body, headers = request("tools/list", {})
    del body["params"]["_meta"]
    return body, headers


SDK = [
    request("tools/call", {"name": "add", "arguments": {"a": 1, "b": 1}}),  # hidden: renamed away
    request("tools/call", {"name": "test_error_handling", "arguments": {}}),  # denied
    request("tools/call", {"name": "test_tool_with_progress", "arguments": {}}, progressToken="p1"),
    request(
        "tools/call",
        {"name": "echo", "arguments": {"text": "x"}},
        **{"io.modelcontextprotocol/logLevel": "info"},
    ),
    request("ping", {}),
    _mismatched_name(),
    _no_envelope(),
    ({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}}, HEADERS),
    ([{"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": ENVELOPE}}], HEADERS),
    (request("tools/list", {})[0], {**HEADERS, "accept": "application/json"}),
]
"""Requests that fall back to the SDK path (its answer, byte for byte)."""


@pytest.fixture(scope="module")
def cancel_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fastpath") / "cancelled"


async def test_fast_and_sdk_paths_answer_alike(cancel_file: Path) -> None:
    async with proxies(config(cancel_file)) as (fast, sdk), httpx2.AsyncClient(timeout=60) as http:
        before = await fast_route(fast)
        for body, headers in FAST + SDK:
            ours = await answer(http, fast, body, headers)
            theirs = await answer(http, sdk, body, headers)
            assert ours == theirs, body
        after = await fast_route(fast)
        assert after["fast"] - before.get("fast", 0) == len(FAST)
        assert after["sdk"] - before.get("sdk", 0) == len(SDK)
        # The proxy without the fast path never counts one.
        assert await fast_route(sdk) == {}


async def test_a_disconnected_client_cancels_the_backend_call(cancel_file: Path) -> None:
    async with proxies(config(cancel_file)) as (fast, _):
        await anyio.Path(cancel_file).unlink(missing_ok=True)
        before = (await fast_route(fast))["fast"]
        body, headers = request("tools/call", {"name": "slow", "arguments": {"seconds": 30}})
        async with httpx2.AsyncClient(timeout=httpx2.Timeout(60, read=1.0)) as http:
            with pytest.raises(httpx2.ReadTimeout):
                await http.post(f"{fast}/mcp", content=json.dumps(body), headers=headers)
        with anyio.fail_after(30):
            while not await anyio.Path(cancel_file).exists():  # noqa: ASYNC110 (the backend writes it)
                await anyio.sleep(0.05)
        assert (await fast_route(fast))["fast"] == before + 1
        # The shared backend session still serves the fast path.
        async with httpx2.AsyncClient(timeout=60) as http:
            status, reply = await answer(
                http, fast, *request("tools/call", {"name": "echo", "arguments": {"text": "ok"}})
            )
        assert status == 200
        assert reply["result"]["structuredContent"] == {"result": "ok"}


@pytest.fixture(scope="module")
def direct() -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    with run_server([sys.executable, str(FIXTURE), "streamable-http", str(port)], url):
        yield url


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_results_through_the_fast_proxy_equal_direct_ones(
    direct: str, mode: str, cancel_file: Path
) -> None:
    plain = {**config(cancel_file), "toolFilter": {}}
    async with proxies(plain) as (fast, _):
        before = await fast_route(fast)
        async with Client(direct, mode=mode) as theirs, Client(f"{fast}/mcp", mode=mode) as ours:  # type: ignore[arg-type]
            for name, arguments in (
                ("echo", {"text": "same"}),
                ("add", {"a": 40, "b": 2}),
                ("test_multiple_content_types", {}),
                ("test_embedded_resource", {}),
                ("no_such_tool", {}),
            ):
                mine, expected = (
                    await ours.call_tool(name, arguments),
                    await theirs.call_tool(name, arguments),
                )
                assert mine.content == expected.content, name
                assert (mine.structured_content, mine.is_error) == (
                    expected.structured_content,
                    expected.is_error,
                )
            assert [t.name for t in (await ours.list_tools()).tools] == [
                t.name for t in (await theirs.list_tools()).tools
            ]
            read = await ours.read_resource("test://static-binary")
            assert read.contents == (await theirs.read_resource("test://static-binary")).contents
            prompt = await ours.get_prompt("test_prompt_with_arguments", {"arg1": "x", "arg2": "y"})
            assert (
                prompt.messages
                == (
                    await theirs.get_prompt("test_prompt_with_arguments", {"arg1": "x", "arg2": "y"})
                ).messages
            )
        served = await fast_route(fast)
        fast_calls = served["fast"] - before.get("fast", 0)
        if mode == "auto":  # the 2026-07-28 era: every call above takes the fast path
            assert fast_calls >= 8
        else:  # the session era always takes the SDK path
            assert fast_calls == 0
            assert served["sdk"] > before.get("sdk", 0)
