"""ASGI apps served with uvicorn in the test's own event loop, on sockets the test bound."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Literal

import uvicorn
from starlette.types import ASGIApp


@contextlib.asynccontextmanager
async def serve_asgi(
    *apps: tuple[socket.socket, ASGIApp],
    lifespan: Literal["on", "off"] = "on",
    tls: tuple[str, str] | None = None,
) -> AsyncIterator[None]:
    """Serve each ``(socket, app)`` with uvicorn in this loop (over TLS with ``tls``: the certificate and
    key files); stop them all together."""
    certfile, keyfile = tls or (None, None)
    servers = [
        uvicorn.Server(
            uvicorn.Config(
                app,
                log_level="warning",
                lifespan=lifespan,
                ws="none",
                ssl_certfile=certfile,
                ssl_keyfile=keyfile,
            )
        )
        for _, app in apps
    ]
    tasks = [asyncio.create_task(s.serve(sockets=[sock])) for s, (sock, _) in zip(servers, apps, strict=True)]
    try:
        while not all(s.started for s in servers):
            for task in tasks:
                if task.done():
                    task.result()
            await asyncio.sleep(0.01)
        yield
    finally:
        for s in servers:
            s.should_exit = True
        await asyncio.gather(*tasks)
        for sock, _ in apps:
            sock.close()
