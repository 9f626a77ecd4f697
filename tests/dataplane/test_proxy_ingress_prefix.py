"""A legacy SSE client behind a path-stripping ingress, through the real proxy process and the official
SDK client: ToolHive's ``endpointPrefix`` and ``trustProxyHeaders`` make the announced message endpoint
reachable; without them the client's posts miss the proxy."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from starlette.types import Receive, Scope, Send

from tests.dataplane.fastpathutil import config as fixture_proxy_config
from tests.dataplane.proxyutil import run_proxy
from tests.support.asgi import serve_asgi

PREFIX = "/github"


class StripPrefixIngress:
    """An ingress routing ``PREFIX/...`` to the proxy with the prefix stripped, as path-based ingress
    controllers do; ``forwarded_prefix`` also sets ``X-Forwarded-Prefix`` (Traefik's StripPrefix does)."""

    def __init__(self, upstream: str, http: httpx2.AsyncClient, forwarded_prefix: bool) -> None:
        self.upstream = upstream
        self.http = http
        self.forwarded_prefix = forwarded_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        path: str = scope["path"]
        if not path.startswith(PREFIX + "/"):
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b"no route"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [(k, v) for k, v in scope["headers"] if k not in (b"host", b"content-length")]
        if self.forwarded_prefix:
            headers.append((b"x-forwarded-prefix", PREFIX.encode()))
        query = scope["query_string"].decode()
        url = self.upstream + path.removeprefix(PREFIX) + (f"?{query}" if query else "")
        request = self.http.build_request(scope["method"], url, headers=headers, content=body)
        response = await self.http.send(request, stream=True)

        async def pump() -> None:
            start = {"type": "http.response.start", "status": response.status_code}
            await send({**start, "headers": response.headers.raw})
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})

        async def until_disconnected() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        try:  # an SSE stream never ends: the client going away ends the forwarding
            async with anyio.create_task_group() as tasks:
                for job in (pump, until_disconnected):
                    tasks.start_soon(_then_cancel, job, tasks.cancel_scope)
        finally:
            await response.aclose()


async def _then_cancel(job: Callable[[], Awaitable[None]], scope: anyio.CancelScope) -> None:
    await job()
    scope.cancel()


@contextlib.asynccontextmanager
async def ingress_in_front(upstream: str, forwarded_prefix: bool) -> AsyncIterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    async with (
        httpx2.AsyncClient(timeout=30) as http,
        serve_asgi((sock, StripPrefixIngress(upstream, http, forwarded_prefix)), lifespan="off"),
    ):
        yield f"http://127.0.0.1:{port}{PREFIX}"


async def _tools_through(ingress: str) -> list[str]:
    async with Client(sse_client(f"{ingress}/sse"), mode="legacy") as client:
        return sorted(t.name for t in (await client.list_tools()).tools)


@pytest.mark.parametrize(
    ("settings", "forwarded_prefix"),
    [({"endpointPrefix": PREFIX}, False), ({"trustProxyHeaders": True}, True)],
    ids=["endpointPrefix", "trustProxyHeaders"],
)
async def test_an_sse_client_behind_a_path_stripping_ingress_completes_its_session(
    tmp_path: Path, settings: dict[str, Any], forwarded_prefix: bool
) -> None:
    config = {**fixture_proxy_config(tmp_path / "cancelled"), **settings}
    with run_proxy(config=config, tmp=tmp_path) as base:
        async with ingress_in_front(base, forwarded_prefix) as ingress:
            tools = await asyncio.wait_for(_tools_through(ingress), timeout=60)
    assert "plus" in tools


async def test_without_them_the_announced_endpoint_misses_the_ingress_route(tmp_path: Path) -> None:
    config = fixture_proxy_config(tmp_path / "cancelled")
    # The header alone is not trusted: a client must not choose the path announced to it.
    with run_proxy(config=config, tmp=tmp_path) as base:
        async with (
            ingress_in_front(base, forwarded_prefix=True) as ingress,
            httpx2.AsyncClient() as http,
            http.stream("GET", f"{ingress}/sse", timeout=30) as stream,
        ):
            endpoint = await _first_endpoint(stream)
    assert endpoint.startswith("/messages/?session_id="), endpoint  # outside PREFIX: the ingress 404s it


async def _first_endpoint(stream: httpx2.Response) -> str:
    event = None
    async for line in stream.aiter_lines():
        if line.startswith("event:"):
            event = line.removeprefix("event:").strip()
        elif line.startswith("data:") and event == "endpoint":
            return line.removeprefix("data:").strip()
    raise AssertionError("the SSE stream ended without an endpoint event")
