"""Cedar authorization end to end: a test issuer (real JWKS), a real MCP server, and in front of it the
proxy (fast path or SDK path; an HTTP backend, as a remote proxy has) or the virtual gateway, each with
the policies under test (``front``)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server import MCPServer
from mcp_types import ToolAnnotations

from api.proxy_config import ProxyConfig
from api.vmcp_config import VMCPConfig
from gateway.proxy import build_proxy_app
from gateway.transports import describe_backend, transport_for
from gateway.vmcp.server import build_vmcp_app
from tests.support.asgi import serve_asgi
from tests.support.auth import AUDIENCE, Issuer, bind
from tests.support.waiting import eventually

Path = Literal["fast", "sdk", "gateway"]
PATHS: tuple[Path, ...] = ("fast", "sdk", "gateway")
SERVER = "files"
"""The MCP server's name as policies see it (``MCP::"files"``): the proxy's name, the gateway's backend."""
TOOLS = ("read_file", "delete_file", "echo", "deploy")


def files_server() -> MCPServer:
    """The MCP server behind every front: tools with and without annotations, a prompt, a resource."""
    server = MCPServer("files-backend")

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def read_file(path: str) -> str:
        """Read a file."""
        return f"content of {path}"

    @server.tool(annotations=ToolAnnotations(destructive_hint=True))
    def delete_file(path: str) -> str:
        """Delete a file."""
        return f"deleted {path}"

    @server.tool()
    def echo(text: str) -> str:
        """Return the text."""
        return text

    @server.tool()
    def deploy(env: str) -> str:
        """Deploy to an environment."""
        return f"deployed to {env}"

    @server.prompt()
    def greeting(name: str) -> str:
        """Greet someone."""
        return f"Hello {name}"

    @server.resource("file:///notes.txt", name="notes")
    def notes() -> str:
        """Notes."""
        return "the notes"

    return server


@dataclass
class Front:
    """One front (proxy or gateway) with authorization, and a way to connect as a given token."""

    issuer: Issuer
    url: str
    http: httpx2.AsyncClient

    @contextlib.asynccontextmanager
    async def client(self, token: str | None, mode: str) -> AsyncIterator[Client]:
        headers = {"authorization": f"Bearer {token}"} if token is not None else {}
        async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
            transport = streamable_http_client(f"{self.url}/mcp", http_client=http)
            async with Client(transport, mode=mode) as client:  # type: ignore[arg-type]
                yield client

    async def metrics(self) -> str:
        return (await self.http.get(f"{self.url}/metrics")).text


@contextlib.asynccontextmanager
async def front(path: Path, authz: dict[str, Any], *, oidc: bool = True) -> AsyncIterator[Front]:
    """A front of kind ``path`` enforcing ``authz`` (the config files' ``authz`` object)."""
    issuer = Issuer()
    (issuer_sock, issuer.url), (backend_sock, backend_url), (front_sock, front_url) = bind(), bind(), bind()
    port = int(front_url.rsplit(":", 1)[1])
    oidc_config = {"issuer": issuer.url, "audience": AUDIENCE} if oidc else None
    if path == "gateway":
        incoming: dict[str, Any] = {"type": "oidc", "oidc": oidc_config} if oidc else {"type": "anonymous"}
        config = VMCPConfig.model_validate(
            {
                "name": "gw",
                "backends": [{"name": SERVER, "url": f"{backend_url}/mcp"}],
                "aggregation": {
                    "conflictResolution": "priority",
                    "conflictResolutionConfig": {"priorityOrder": [SERVER]},
                },
                "incomingAuth": {**incoming, "authz": authz},
            }
        )
        app, _ = build_vmcp_app(config, bind_host="127.0.0.1", port=port)
    else:
        proxy = ProxyConfig.model_validate(
            {
                "name": SERVER,
                "port": port,
                "backend": {"type": "http", "url": f"{backend_url}/mcp"},
                "oidc": oidc_config,
                "authz": authz,
            }
        )
        app, _ = build_proxy_app(
            proxy,
            transport_for(proxy.backend),
            description=describe_backend(proxy.backend),
            fast_path=path == "fast",
        )
    backend = files_server().streamable_http_app()
    async with (
        httpx2.AsyncClient(timeout=30) as http,
        serve_asgi((issuer_sock, issuer.app()), lifespan="off"),
        serve_asgi((backend_sock, backend)),
        serve_asgi((front_sock, app)),
    ):

        async def ready() -> bool:  # the gateway lists nothing until its backend is connected
            return (await http.get(f"{front_url}/readyz")).status_code == 200

        await eventually(ready, what="the front ready")
        yield Front(issuer, front_url, http)
