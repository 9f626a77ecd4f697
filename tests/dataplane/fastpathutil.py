"""Shared by the fast-path tests: two proxies (fast path on / off) in front of the fixture, raw requests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2

from api.proxy_config import ProxyConfig
from gateway.proxy import ProxyRuntime, build_proxy_app
from gateway.transports import describe_backend, transport_for
from tests.dataplane.proxyutil import FIXTURE_CMD, serve_asgi

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
SERVED: list[tuple[str, dict[str, Any]]] = [
    ("tools/list", {}),
    ("tools/call", {"name": "echo", "arguments": {"text": "hi"}}),
    ("tools/call", {"name": "plus", "arguments": {"a": 2, "b": 3}}),  # renamed
    ("tools/call", {"name": "no_such_tool", "arguments": {}}),  # the backend's answer
    ("tools/call", {"name": "echo", "arguments": {"text": 7}}),  # the backend validates
    ("tools/call", {"name": "test_multiple_content_types", "arguments": {}}),
    ("resources/list", {}),
    ("resources/templates/list", {}),
    ("resources/read", {"uri": "test://static-text"}),
    ("resources/read", {"uri": "test://no-such-resource"}),
    ("prompts/list", {}),
    ("prompts/get", {"name": "test_prompt_with_arguments", "arguments": {"arg1": "a", "arg2": "b"}}),
    (
        "completion/complete",
        {
            "ref": {"type": "ref/prompt", "name": "test_prompt_with_arguments"},
            "argument": {"name": "arg1", "value": "b"},
        },
    ),
]
"""Requests (method, params) the fast path serves in either protocol era; the first six are tools."""


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
