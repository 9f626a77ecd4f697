"""The proxy app with inbound OIDC in front of a backend that records what it receives (``stack``)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server import MCPServer
from starlette.types import ASGIApp, Receive, Scope, Send

from api.proxy_config import ProxyConfig
from gateway.proxy import build_proxy_app
from gateway.transports import describe_backend, needs_caller_sessions, transport_for
from tests.dataplane.proxyutil import serve_asgi
from tests.support.auth import AUDIENCE, Issuer, bind


def recording_backend(seen: list[dict[str, str]]) -> ASGIApp:
    """An MCP server (tool ``echo``) that records the headers of every HTTP request it receives."""
    server = MCPServer("recording-backend")

    @server.tool()
    def echo(text: str) -> str:
        """Return the text."""
        return text

    app = server.streamable_http_app()

    async def recorder(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            seen.append({k.decode().lower(): v.decode() for k, v in scope["headers"]})
        await app(scope, receive, send)

    return _LifespanPassthrough(recorder, app)


class _LifespanPassthrough:
    """Route ASGI lifespan to the Starlette app (its session manager) and HTTP to the recorder."""

    def __init__(self, recorder: ASGIApp, app: ASGIApp) -> None:
        self.recorder = recorder
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await (self.app if scope["type"] == "lifespan" else self.recorder)(scope, receive, send)


@dataclass
class Stack:
    issuer: Issuer
    proxy_url: str
    backend_seen: list[dict[str, str]]
    http: httpx2.AsyncClient

    async def post_ping(self, token: str | None) -> httpx2.Response:
        headers = {"accept": "application/json, text/event-stream"}
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        return await self.http.post(f"{self.proxy_url}/mcp", json=body, headers=headers)

    @contextlib.asynccontextmanager
    async def client(self, token: str) -> AsyncIterator[Client]:
        async with httpx2.AsyncClient(headers={"authorization": f"Bearer {token}"}, timeout=30) as http:
            transport = streamable_http_client(f"{self.proxy_url}/mcp", http_client=http)
            async with Client(transport, mode="auto") as client:
                yield client


@contextlib.asynccontextmanager
async def stack(*, backend_auth: dict[str, Any] | None = None, **oidc: Any) -> AsyncIterator[Stack]:
    issuer = Issuer()
    seen: list[dict[str, str]] = []
    (issuer_sock, issuer.url), (backend_sock, backend_url), (proxy_sock, proxy_url) = bind(), bind(), bind()
    backend: dict[str, Any] = {"type": "http", "url": f"{backend_url}/mcp"}
    if backend_auth is not None:
        backend["auth"] = {**backend_auth, "tokenUrl": f"{issuer.url}/token"}
    config = ProxyConfig.model_validate(
        {
            "name": "auth-proxy",
            "port": int(proxy_url.rsplit(":", 1)[1]),
            "backend": backend,
            "oidc": {"issuer": issuer.url, "audience": AUDIENCE, **oidc},
        }
    )
    description = describe_backend(config.backend)
    if needs_caller_sessions(config.backend):
        backend_config = config.backend
        app, _ = build_proxy_app(
            config,
            None,
            description=description,
            caller_transport=lambda subject: transport_for(backend_config, subject=subject),
        )
    else:
        app, _ = build_proxy_app(config, transport_for(config.backend), description=description)
    async with (
        httpx2.AsyncClient(timeout=30) as http,
        serve_asgi((issuer_sock, issuer.app()), (backend_sock, recording_backend(seen))),
        serve_asgi((proxy_sock, app)),
    ):
        yield Stack(issuer, proxy_url, seen, http)
