"""The remote proxy's surroundings: a real remote MCP server, a spy in front of it, and the proxy app."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from api.proxy_config import ProxyConfig
from gateway.proxy import build_proxy_app
from gateway.transports import describe_backend, transport_for
from tests.dataplane.proxyutil import FIXTURE, NPM_BIN, free_port, run_server, serve_asgi
from tests.support.auth import bind

NODE_ENV = {"PATH": f"{NPM_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
HOP_BY_HOP = {"host", "content-length", "connection", "transfer-encoding", "keep-alive"}


@dataclass
class Spy:
    """Reverse proxy in front of the real remote server: records requests, can be slow or broken."""

    upstream: str
    """Base URL of the real server (``http://127.0.0.1:PORT``); every request goes to its ``/mcp``."""
    seen: list[dict[str, Any]] = field(default_factory=list)
    delay: float = 0.0
    garbage: bool = False

    def app(self) -> Starlette:
        client = httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=None))

        async def forward(request: Request) -> Response:
            body = await request.body()
            self.seen.append(
                {
                    "path": request.url.path,
                    "query": request.url.query,
                    "headers": dict(request.headers),
                    "body": body.decode(errors="replace"),
                }
            )
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.garbage and request.method == "POST":
                return Response(b"<html>upstream exploded", status_code=200, media_type="application/json")
            headers = {k: v for k, v in request.headers.items() if k not in HOP_BY_HOP}
            upstream = await client.send(
                client.build_request(request.method, f"{self.upstream}/mcp", headers=headers, content=body),
                stream=True,
            )
            kept = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
            return StreamingResponse(
                upstream.aiter_raw(),
                status_code=upstream.status_code,
                headers=kept,
                background=BackgroundTask(upstream.aclose),
            )

        @contextlib.asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            async with client:
                yield

        return Starlette(
            routes=[Route("/{path:path}", forward, methods=["GET", "POST", "DELETE"])], lifespan=lifespan
        )

    def header_values(self) -> str:
        return json.dumps([r["headers"] for r in self.seen])


@contextlib.contextmanager
def remote_server(kind: str) -> Any:
    """A real MCP server over streamable HTTP on 127.0.0.1; yields its base URL and an echo call."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    if kind == "everything":
        args = [str(NPM_BIN / "mcp-server-everything"), "streamableHttp"]
        env = {**NODE_ENV, "PORT": str(port)}
        call = ("echo", {"message": "remote hello"}, "remote hello")
    else:
        args, env = [sys.executable, str(FIXTURE), "streamable-http", str(port)], {}
        call = ("echo", {"text": "remote hello"}, "remote hello")
    with run_server(args, f"{base}/", env=env):
        yield base, call


@contextlib.asynccontextmanager
async def client_for(base: str, token: str | None) -> AsyncIterator[Client]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(f"{base}/mcp", http_client=http), mode="auto") as client,
    ):
        yield client


@contextlib.asynccontextmanager
async def in_process(config: dict[str, Any]) -> AsyncIterator[tuple[str, Any]]:
    """The proxy app from ``config`` served in this loop; yields its base URL and its metrics."""
    sock, url = bind()
    model = ProxyConfig.model_validate({**config, "port": int(url.rsplit(":", 1)[1])})
    app, server = build_proxy_app(
        model, transport_for(model.backend), description=describe_backend(model.backend)
    )
    async with serve_asgi((sock, app)):
        yield url, server
