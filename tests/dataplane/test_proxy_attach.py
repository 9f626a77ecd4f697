"""The attach backend against a fake Kubernetes attach endpoint (no kubelet runs here).

:class:`FakeAttach` is an aiohttp websocket server on 127.0.0.1 answering
``/api/v1/namespaces/{ns}/pods/{pod}/attach`` like the API server does: it negotiates one of the channel
subprotocols and runs a "container" (a real stdio MCP server, server-everything) whose stdin / stdout /
stderr travel as channel-prefixed frames; stdout is cut at odd places across frames. ``kill()`` makes the
container go away (an error-channel ``Status``, then the socket closes) and ``down`` refuses attaches
meanwhile, as the API server does while the container restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from aiohttp import WSMsgType, web
from mcp import Client

from api.proxy_config import ProxyConfig
from gateway.backends.attach import STDERR, STDIN, STDOUT, decode_frame, encode_frame
from gateway.proxy import build_proxy_app
from gateway.transports import describe_backend, transport_for
from tests.dataplane.proxyutil import NPM_BIN, serve_asgi

pytestmark = pytest.mark.slow

CONTAINER = [str(NPM_BIN / "mcp-server-everything")]
CONTAINER_ENV = {**os.environ, "PATH": f"{NPM_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


class FakeAttach:
    def __init__(self, protocols: tuple[str, ...]) -> None:
        self.protocols = protocols
        self.attaches: list[dict[str, Any]] = []
        self.down = False
        self.stdin_lines = 0
        self.negotiated: list[str | None] = []
        self._process: asyncio.subprocess.Process | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v1/namespaces/{ns}/pods/{pod}/attach", self.attach)
        return app

    async def kill(self) -> None:
        assert self._process is not None
        self._process.kill()

    async def attach(self, request: web.Request) -> web.StreamResponse:
        self.attaches.append(
            {
                "path": request.path,
                "query": dict(request.query),
                "authorization": request.headers.get("Authorization"),
                "offered": request.headers.get("Sec-WebSocket-Protocol"),
            }
        )
        if self.down:
            raise web.HTTPInternalServerError(text="container mcp is not running")
        ws = web.WebSocketResponse(protocols=self.protocols)
        await ws.prepare(request)
        protocol = ws.ws_protocol
        self.negotiated.append(protocol)
        process = await asyncio.create_subprocess_exec(
            *CONTAINER,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=CONTAINER_ENV,
        )
        self._process = process

        async def send(channel: int, payload: bytes) -> None:
            frame = encode_frame(protocol, channel, payload)
            await (ws.send_str(frame) if isinstance(frame, str) else ws.send_bytes(frame))

        async def pump(stream: asyncio.StreamReader, channel: int) -> None:
            while chunk := await stream.read(4096):
                cut = max(1, len(chunk) // 3)  # lines split across frames, several lines per frame
                await send(channel, chunk[:cut])
                await send(channel, chunk[cut:])

        async def feed() -> None:
            assert process.stdin is not None
            async for message in ws:
                if message.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                    continue
                decoded = decode_frame(protocol, message.data)
                if decoded is not None and decoded[0] == STDIN:
                    self.stdin_lines += decoded[1].count(b"\n")
                    process.stdin.write(decoded[1])

        assert process.stdout is not None and process.stderr is not None
        tasks = [
            asyncio.create_task(pump(process.stdout, STDOUT)),
            asyncio.create_task(pump(process.stderr, STDERR)),
            asyncio.create_task(feed()),
        ]
        exited = asyncio.create_task(process.wait())
        await asyncio.wait([exited, tasks[2]], return_when=asyncio.FIRST_COMPLETED)
        if exited.done():  # the container went away: report it on the error channel, then close
            await asyncio.gather(tasks[0], tasks[1])
            status = {"kind": "Status", "status": "Failure", "message": "container mcp terminated"}
            await send(3, json.dumps(status).encode())
        else:
            process.kill()
            await exited
        for task in tasks:
            task.cancel()
        await ws.close()
        return ws


@contextlib.asynccontextmanager
async def running(fake: FakeAttach) -> AsyncIterator[str]:
    runner = web.AppRunner(fake.app())
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock)
    await site.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        await runner.cleanup()


async def _wait_ready(http: httpx2.AsyncClient, url: str, expect: int, limit: float = 30) -> None:
    with anyio.fail_after(limit):
        while (await http.get(url)).status_code != expect:  # noqa: ASYNC110 (polling another server)
            await anyio.sleep(0.02)


@pytest.mark.parametrize("protocol", ["v4.channel.k8s.io", "v4.base64.channel.k8s.io"])
async def test_attach_carries_stdio_and_reattaches_after_the_container_restarts(
    tmp_path: Path, protocol: str
) -> None:
    fake = FakeAttach((protocol,))
    token_file = tmp_path / "token"
    token_file.write_text("token-1\n")
    proxy_sock = socket.socket()
    proxy_sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{proxy_sock.getsockname()[1]}"
    async with running(fake) as api_server:
        config = ProxyConfig.model_validate(
            {
                "backend": {
                    "type": "attach",
                    "namespace": "team-a",
                    "pod": "time-server-0",
                    "container": "mcp",
                    "apiServer": api_server,
                    "tokenFile": str(token_file),
                    "caFile": None,
                }
            }
        )
        app, runtime = build_proxy_app(
            config, transport_for(config.backend), description=describe_backend(config.backend)
        )
        async with serve_asgi((proxy_sock, app)), httpx2.AsyncClient(timeout=10) as http:
            await _wait_ready(http, f"{base}/readyz", 200)
            first = fake.attaches[0]
            assert first["path"] == "/api/v1/namespaces/team-a/pods/time-server-0/attach"
            assert first["query"] == {"container": "mcp", "stdin": "true", "stdout": "true", "stderr": "true"}
            assert first["authorization"] == "Bearer token-1"
            assert fake.negotiated == [protocol]
            async with Client(f"{base}/mcp", mode="auto") as client:
                result = await client.call_tool("echo", {"message": "over attach"})
                assert result.content[0].text == "Echo: over attach"  # type: ignore[union-attr]
                assert fake.stdin_lines >= 2  # the handshake and the call went through stdin

                token_file.write_text("token-2\n")  # the kubelet rotated the projected token
                fake.down = True
                await fake.kill()
                await _wait_ready(http, f"{base}/readyz", 503)
                assert "unavailable" in (await http.get(f"{base}/readyz")).text
                fake.down = False
                await _wait_ready(http, f"{base}/readyz", 200)
                result = await client.call_tool("echo", {"message": "after re-attach"})
                assert result.content[0].text == "Echo: after re-attach"  # type: ignore[union-attr]
            assert fake.attaches[-1]["authorization"] == "Bearer token-2"
            assert runtime.backend.restarts >= 1
            metrics = (await http.get(f"{base}/metrics")).text
            assert "mcp_proxy_backend_up 1.0" in metrics
