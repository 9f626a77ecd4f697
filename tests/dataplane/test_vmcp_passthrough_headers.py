"""``passthroughHeaders``: the gateway forwards the allowlisted client headers to every backend, and no other.

The gateway's config is rendered by the operator's builder from a VirtualMCPServer with
``spec.passthroughHeaders``. Two real backends sit behind spies that record the headers of each request
reaching them: the fixture server (driven in the 2026-07-28 era) and server-everything (2025-11-25
sessions). The real gateway runs twice, fast path on (``mcp-operator vmcp``) and SDK path only; a client
of each era calls a tool of each backend sending the allowed headers, another header, a cookie and a bearer;
a backend's own ``headerForward`` wins over an allowed client header of the same name.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from api.auth_config import HeaderForwardConfig
from api.virtualmcpserver import VirtualMCPServer
from controller.reconcilers.virtualmcpserver_build import Backend, Member, build_vmcp_config
from tests.support import gateway_processes as gp
from tests.support.asgi import serve_asgi
from tests.support.auth import bind
from tests.support.builders import SETTINGS
from tests.support.remote_proxy import Spy, remote_server

pytestmark = pytest.mark.slow

GATEWAYS = {
    "fast": [str(gp.BIN / "mcp-operator"), "vmcp", "--port", "{port}", "--config", "{config}"],
    "sdk": [sys.executable, "-c", gp.SDK_PATH_GATEWAY, "{port}", "{config}"],
}
FRONT_MODES = ("auto", "legacy")  # a 2026-07-28 client, a 2025-11-25 session


def gateway_config(backends: dict[str, str]) -> dict[str, Any]:
    vmcp = VirtualMCPServer.model_validate(
        {
            "metadata": {"name": "gw", "namespace": "tools"},
            "spec": {
                "groupRef": {"name": "team"},
                "incomingAuth": {"type": "anonymous"},
                "passthroughHeaders": ["X-Tenant-Id", "X-Client"],
                # The spec's list wins: this one is never used.
                "config": {"passthroughHeaders": ["X-Other"]},
            },
        }
    )
    # The modern backend's own headerForward sets X-Client: the operator's header wins over the client's.
    forward = {"modern": HeaderForwardConfig(add_plaintext_headers={"X-Client": "mcp-operator"})}
    members = [
        Backend(Member("MCPServer", n, url, "streamable-http", None), header_forward=forward.get(n))
        for n, url in backends.items()
    ]
    return build_vmcp_config(vmcp, members, SETTINGS).to_file_dict()


@contextlib.asynccontextmanager
async def gateway(kind: str, config: dict[str, Any], logdir: Path) -> AsyncIterator[str]:
    """The real gateway process on ``config`` once its backends are ready (the spies serve in this loop:
    every wait runs in a thread)."""
    path, port = logdir / f"{kind}.yaml", gp.free_port()
    gp.write_config(path, config)
    argv = [a.replace("{port}", str(port)).replace("{config}", str(path)) for a in GATEWAYS[kind]]
    proc = gp.start(f"gateway-{kind}", argv, logdir)
    base = f"http://127.0.0.1:{port}"
    try:
        await asyncio.to_thread(gp.wait_http, f"{base}/readyz", proc)
        await asyncio.to_thread(
            gp.wait_until,
            lambda: all(b["health"] == "ready" for b in gp.get_json(f"{base}/status")["backends"]),
            what=f"the {kind} gateway's backends ready",
        )
        yield base
    finally:
        await asyncio.to_thread(proc.stop)


@contextlib.asynccontextmanager
async def client(base: str, mode: str, tenant: str) -> AsyncIterator[Client]:
    headers = {
        "X-Tenant-Id": tenant,
        "X-Client": "spoofed-by-client",
        "X-Other": "not-forwarded",
        "Cookie": "session=client-cookie",
        "Authorization": "Bearer client-token",
    }
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(f"{base}/mcp", http_client=http), mode=mode) as front,
    ):
        yield front


def calls_of(spy: Spy, tool: str) -> list[dict[str, str]]:
    """The headers of each ``tools/call`` of ``tool`` that reached the backend."""
    return [r["headers"] for r in spy.seen if '"tools/call"' in r["body"] and f'"{tool}"' in r["body"]]


async def test_only_the_allowlisted_client_header_reaches_every_backend(tmp_path: Path) -> None:
    with (
        remote_server("fixture") as (modern, modern_call),
        remote_server("everything") as (legacy, legacy_call),
    ):
        spies = {"modern": Spy(modern), "legacy": Spy(legacy)}
        sockets = {name: bind() for name in spies}
        apps = [(sockets[name][0], spy.app()) for name, spy in spies.items()]
        async with serve_asgi(*apps):
            config = gateway_config({name: f"{url}/mcp" for name, (_, url) in sockets.items()})
            assert config["passthroughHeaders"] == ["X-Tenant-Id", "X-Client"]
            calls = {"modern": modern_call, "legacy": legacy_call}
            for kind in GATEWAYS:
                async with gateway(kind, config, tmp_path) as base:
                    for mode in FRONT_MODES:
                        async with client(base, mode, f"{kind}-{mode}") as front:
                            for name, (tool, args, expected) in calls.items():
                                result = await front.call_tool(f"{name}_{tool}", args)
                                text = "".join(getattr(c, "text", "") for c in result.content)
                                assert expected in text, (kind, mode, name, result)

    for name, spy in spies.items():
        tool = calls[name][0]
        seen = calls_of(spy, tool)
        tenants = sorted(h.get("x-tenant-id", "") for h in seen)
        expected_tenants = sorted(f"{kind}-{mode}" for kind in GATEWAYS for mode in FRONT_MODES)
        assert tenants == expected_tenants, (name, tenants)
        clients = {h.get("x-client") for h in seen}
        assert clients == {"mcp-operator" if name == "modern" else "spoofed-by-client"}, (name, clients)
        for request in spy.seen:  # no call, list or probe carries another client header
            headers = request["headers"]
            assert "x-other" not in headers and "cookie" not in headers, (name, headers)
            assert "authorization" not in headers, (name, headers)
