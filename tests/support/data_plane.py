"""A small data plane on loopback for the observability tests: the fixture MCP server, the project's proxy
in front of it (``mcp-operator proxy --target``) and the gateway (``mcp-operator vmcp``) with the proxy as
its one backend ``fetch``, so a call runs client -> gateway -> proxy -> server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp import Client

from tests.support.gateway_processes import (
    BIN,
    Proc,
    fixture_server,
    free_port,
    start,
    wait_http,
    write_config,
)

BACKEND = "fetch"
"""The gateway's name for the proxy (its tools are exposed as ``fetch_<tool>``)."""


@dataclass(frozen=True)
class DataPlane:
    server: Proc
    proxy: Proc
    gateway: Proc
    server_url: str
    proxy_url: str
    gateway_url: str

    @property
    def procs(self) -> tuple[Proc, Proc, Proc]:
        return self.server, self.proxy, self.gateway


@contextmanager
def data_plane(logdir: Path, env: dict[str, str] | None = None) -> Iterator[DataPlane]:
    """The three processes (``env`` added to each), stopped by pid on exit."""
    ports = {name: free_port() for name in ("server", "proxy", "gateway")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    procs: list[Proc] = []
    logdir.mkdir(parents=True, exist_ok=True)
    try:
        procs.append(fixture_server("server", ports["server"], logdir, env=env))
        proxy_argv = ["proxy", "--port", str(ports["proxy"]), "--target", f"{urls['server']}/mcp"]
        procs.append(start("proxy", [str(BIN / "mcp-operator"), *proxy_argv], logdir, env))
        wait_http(f"{urls['proxy']}/health", procs[-1])
        config = logdir / "vmcp.yaml"
        write_config(
            config,
            {
                "name": "gw",
                "backends": [
                    {"name": BACKEND, "url": f"{urls['proxy']}/mcp", "transport": "streamable-http"}
                ],
            },
        )
        gateway_argv = ["vmcp", "--port", str(ports["gateway"]), "--config", str(config)]
        procs.append(start("gateway", [str(BIN / "mcp-operator"), *gateway_argv], logdir, env))
        wait_http(f"{urls['gateway']}/health", procs[-1])
        yield DataPlane(*procs, urls["server"], urls["proxy"], urls["gateway"])
    finally:
        for proc in reversed(procs):
            proc.stop()


async def call_tool(url: str, name: str, arguments: dict[str, Any]) -> str:
    """One ``tools/call`` on a fresh client (2026-07-28 era when the server speaks it); the result text."""
    async with Client(f"{url}/mcp") as client:
        result = await client.call_tool(name, arguments)
        text = "".join(getattr(c, "text", "") for c in result.content)
        return ("ERROR " if result.is_error else "") + text


async def traffic(plane: DataPlane, calls: int) -> None:
    """Lists and calls through the gateway and straight to the proxy, each answered as expected."""
    async with Client(f"{plane.gateway_url}/mcp") as client:
        assert f"{BACKEND}_echo" in [t.name for t in (await client.list_tools()).tools]
        for index in range(calls):
            result = await client.call_tool(f"{BACKEND}_add", {"a": index, "b": 1})
            assert not result.is_error, result
    async with Client(f"{plane.proxy_url}/mcp") as client:
        for _ in range(calls):
            result = await client.call_tool("echo", {"message": "hi"})
            assert "server: hi" in "".join(getattr(c, "text", "") for c in result.content)
