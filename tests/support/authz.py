"""Cedar authorization end to end: a test issuer (real JWKS), a real MCP server over HTTP, and in front of
it, with the policies under test (``front``): the proxy in this process (fast path or SDK path only),
the remote proxy as an MCPRemoteProxy pod runs it (``mcp-operator proxy`` in its own process, with the
configuration the operator renders), or the virtual gateway."""

from __future__ import annotations

import asyncio
import contextlib
import json
import pathlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server import MCPServer
from mcp_types import ToolAnnotations
from sse_starlette.sse import AppStatus

from api.mcpremoteproxy import MCPRemoteProxy
from api.proxy_config import ProxyConfig
from api.vmcp_config import VMCPConfig
from controller.reconcilers.mcpremoteproxy_build import render_config
from gateway.proxy import build_proxy_app
from gateway.transports import describe_backend, transport_for
from gateway.vmcp.server import build_vmcp_app
from tests.dataplane.proxyutil import run_proxy
from tests.support.asgi import serve_asgi
from tests.support.auth import AUDIENCE, Issuer, bind
from tests.support.builders import SETTINGS
from tests.support.processes import json_records
from tests.support.waiting import eventually

Path = Literal["fast", "sdk", "remote", "gateway", "gateway-sdk"]
PATHS: tuple[Path, ...] = ("fast", "sdk", "remote", "gateway", "gateway-sdk")
SERVER = "files"
"""The MCP server's name as policies see it (``MCP::"files"``): the proxy's (or the MCPRemoteProxy's)
name, the gateway's backend."""
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
    """One front (proxy, remote proxy or gateway) with authorization, and a way to connect as a token."""

    issuer: Issuer
    url: str
    http: httpx2.AsyncClient
    log: pathlib.Path | None = None
    """The audit log of a front in its own process (None: it logs through this process's logging)."""

    @contextlib.asynccontextmanager
    async def client(self, token: str | None, mode: str) -> AsyncIterator[Client]:
        headers = {"authorization": f"Bearer {token}"} if token is not None else {}
        async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
            transport = streamable_http_client(f"{self.url}/mcp", http_client=http)
            async with Client(transport, mode=mode) as client:  # type: ignore[arg-type]
                yield client

    async def metrics(self) -> str:
        return (await self.http.get(f"{self.url}/metrics")).text

    def logged(self, start: int = 0) -> list[dict[str, Any]]:
        """The JSON records of a front in its own process, from byte ``start`` of its log."""
        assert self.log is not None
        with self.log.open("rb") as log:
            log.seek(start)
            return json_records(log.read().decode(errors="replace"))

    def log_size(self) -> int:
        return self.log.stat().st_size if self.log is not None else 0


@contextlib.asynccontextmanager
async def front(path: Path, authz: dict[str, Any], *, oidc: bool = True) -> AsyncIterator[Front]:
    """A front of kind ``path`` enforcing ``authz`` (the config files' ``authz`` object)."""
    issuer = Issuer()
    (issuer_sock, issuer.url), (backend_sock, backend_url) = bind(), bind()
    oidc_config = {"issuer": issuer.url, "audience": AUDIENCE} if oidc else None
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(_end_sse_watcher)
        http = await stack.enter_async_context(httpx2.AsyncClient(timeout=30))
        await stack.enter_async_context(serve_asgi((issuer_sock, issuer.app()), lifespan="off"))
        await stack.enter_async_context(serve_asgi((backend_sock, files_server().streamable_http_app())))
        log = None
        if path == "remote":
            url, log = await stack.enter_async_context(remote_proxy(f"{backend_url}/mcp", authz, oidc_config))
        else:
            url = await stack.enter_async_context(in_process(path, f"{backend_url}/mcp", authz, oidc_config))

        async def ready() -> bool:  # the gateway lists nothing until its backend is connected
            return (await http.get(f"{url}/readyz")).status_code == 200

        await eventually(ready, what="the front ready")
        yield Front(issuer, url, http, log)


async def _end_sse_watcher() -> None:
    """End ``sse_starlette``'s shutdown watcher in this event loop once every server is stopped. The MCP
    server's SSE answers start it (one per thread); it ends when a poll (every 0.5 s) sees a uvicorn
    server exiting, which misses servers that stop between two polls (the remote proxy's set-up stops
    quickly), and would outlive the test."""
    watchers = [
        t for t in asyncio.all_tasks() if getattr(t.get_coro(), "__qualname__", "") == "_shutdown_watcher"
    ]
    if not watchers:
        return
    AppStatus.should_exit = True
    try:
        await asyncio.wait(watchers, timeout=10)
    finally:
        AppStatus.should_exit = False


@contextlib.asynccontextmanager
async def in_process(
    path: Path, backend: str, authz: dict[str, Any], oidc: dict[str, Any] | None
) -> AsyncIterator[str]:
    """The proxy or the gateway (each on its fast or SDK path) served in this event loop; yields its URL."""
    sock, url = bind()
    port = int(url.rsplit(":", 1)[1])
    if path in ("gateway", "gateway-sdk"):
        incoming: dict[str, Any] = {"type": "oidc", "oidc": oidc} if oidc else {"type": "anonymous"}
        config = VMCPConfig.model_validate(
            {
                "name": "gw",
                "backends": [{"name": SERVER, "url": backend}],
                "aggregation": {
                    "conflictResolution": "priority",
                    "conflictResolutionConfig": {"priorityOrder": [SERVER]},
                },
                "incomingAuth": {**incoming, "authz": authz},
            }
        )
        app, _ = build_vmcp_app(config, bind_host="127.0.0.1", port=port, fast_path=path == "gateway")
    else:
        proxy = ProxyConfig.model_validate(
            {
                "name": SERVER,
                "port": port,
                "backend": {"type": "http", "url": backend},
                "oidc": oidc,
                "authz": authz,
            }
        )
        app, _ = build_proxy_app(
            proxy,
            transport_for(proxy.backend),
            description=describe_backend(proxy.backend),
            fast_path=path == "fast",
        )
    async with serve_asgi((sock, app)):
        yield url


def remote_proxy_config(backend: str, authz: dict[str, Any], oidc: dict[str, Any] | None) -> dict[str, Any]:
    """The configuration the operator renders for an MCPRemoteProxy named ``files`` whose ``remoteUrl``
    is ``backend``, with ``authz`` as its inline ``authzConfig`` and ``oidc`` as its inline
    ``oidcConfig`` (None: anonymous), audit on."""
    options = {k: v for k, v in authz.items() if k not in ("policies", "entitiesJson")}
    inline = {k: v for k, v in authz.items() if k in ("policies", "entitiesJson")}
    spec: dict[str, Any] = {
        "remoteUrl": backend,
        "allowPrivateEndpoint": True,  # the "remote" server is on 127.0.0.1 in these tests
        "authzConfig": {"type": "inline", "inline": inline, **options},
        "audit": {"enabled": True},
    }
    if oidc is not None:
        spec["oidcConfig"] = {"inline": oidc}
    proxy = MCPRemoteProxy.model_validate(
        {
            "apiVersion": "mcp-operator.dev/v1beta1",
            "kind": "MCPRemoteProxy",
            "metadata": {"name": SERVER, "namespace": "team", "generation": 1},
            "spec": spec,
        }
    )
    config: dict[str, Any] = json.loads(render_config(proxy, SETTINGS, None, None).text)
    return config


@contextlib.asynccontextmanager
async def remote_proxy(
    backend: str, authz: dict[str, Any], oidc: dict[str, Any] | None
) -> AsyncIterator[tuple[str, pathlib.Path]]:
    """``mcp-operator proxy --config FILE`` in its own process, as an MCPRemoteProxy pod runs it, with
    :func:`remote_proxy_config`; yields its URL and its log (stderr: log and audit lines). Started from a
    thread: its readiness waits for the issuer and the server this event loop serves."""
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        log = pathlib.Path(tmp) / "proxy.log"
        running = run_proxy(
            "--host",
            "127.0.0.1",
            config=remote_proxy_config(backend, authz, oidc),
            tmp=pathlib.Path(tmp),
            log=log,
        )
        url = await asyncio.to_thread(stack.enter_context, running)
        try:
            yield url, log
        finally:
            await asyncio.to_thread(stack.close)
