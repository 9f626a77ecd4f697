"""An attach the API server refuses says why: the error the proxy logs carries the API server's HTTP status
and its ``Status`` reason and message, and ``mcp_proxy_attach_failures_total`` counts it by reason.

A local aiohttp server answers the attach path the way kube-apiserver refuses one (a ``Status`` body for a
missing pod or a missing permission, plain text from the kubelet side); nothing is upgraded.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import REGISTRY

from gateway.backends.attach import AttachRefusedError, open_attach
from gateway.backends.connection import describe

FORBIDDEN = (
    'pods "forbidden-0" is forbidden: User "system:serviceaccount:ns:proxy" cannot get resource '
    '"pods/attach" in API group "" in the namespace "ns"'
)


def status(code: int, reason: str, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message}
    return web.json_response({**body, "reason": reason, "code": code}, status=code)


async def attach(request: web.Request) -> web.StreamResponse:
    pod = request.match_info["pod"]
    if pod == "gone-0":
        return status(404, "NotFound", 'pods "gone-0" not found')
    if pod == "forbidden-0":
        return status(403, "Forbidden", FORBIDDEN)
    return web.Response(status=500, text="container mcp is not running")


@contextlib.asynccontextmanager
async def api_server() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/api/v1/namespaces/{ns}/pods/{pod}/attach", attach)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    try:
        yield f"ws://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        await runner.cleanup()


def failures(reason: str) -> float:
    return REGISTRY.get_sample_value("mcp_proxy_attach_failures_total", {"reason": reason}) or 0.0


async def refusal(url: str) -> str:
    """The line the proxy logs for this failed attach (``BackendConnection`` logs ``describe(exc)``)."""
    with pytest.raises(AttachRefusedError) as refused:
        async with open_attach(url):
            pass
    return describe(refused.value)


@pytest.mark.parametrize(
    ("pod", "reason", "says"),
    [
        ("gone-0", "NotFound", 'HTTP 404 NotFound: pods "gone-0" not found'),
        ("forbidden-0", "Forbidden", f"HTTP 403 Forbidden: {FORBIDDEN}"),
        ("down-0", "InternalServerError", "HTTP 500 InternalServerError: container mcp is not running"),
    ],
)
async def test_refused_attach_names_the_api_servers_reason_and_is_counted(
    pod: str, reason: str, says: str
) -> None:
    async with api_server() as base:
        before = failures(reason)
        line = await refusal(f"{base}/api/v1/namespaces/ns/pods/{pod}/attach?container=mcp&stdin=true")
    assert line == f"AttachRefusedError: attach to pod ns/{pod} refused by the API server: {says}"
    assert "WSServerHandshakeError" not in line
    assert failures(reason) == before + 1


async def test_unreachable_api_server_is_counted_by_error_class() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    before = failures("ClientConnectorError")
    with pytest.raises(aiohttp.ClientConnectorError):
        async with open_attach(f"ws://127.0.0.1:{port}/api/v1/namespaces/ns/pods/p-0/attach"):
            pass
    assert failures("ClientConnectorError") == before + 1
