"""The backend layer's test double: a ``TransportFactory`` serving an in-process MCP server.

``memory_transport(server)`` connects the connection supervisor to ``server`` (an
``mcp.server.lowlevel.Server`` or anything with its ``run`` / ``create_initialization_options``)
through the SDK's in-memory streams: no process, no socket. Each (re)connect runs a fresh server session;
:attr:`MemoryTransport.connects` counts them and :meth:`MemoryTransport.drop` ends the current one (the
backend "dies"; the supervisor reconnects).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
from mcp.server.lowlevel import Server
from mcp.shared.memory import create_client_server_memory_streams

from gateway.backends.connection import Streams

__all__ = ["MemoryTransport", "memory_transport"]


class MemoryTransport:
    """A ``TransportFactory`` (call it) for one in-process server; see the module docstring."""

    def __init__(self, server: Server[Any]) -> None:
        self.server = server
        self.connects = 0
        self.refuse: str | None = None
        """When set, connecting fails with ``ConnectionRefusedError(refuse)``."""
        self._scope: anyio.CancelScope | None = None

    def drop(self) -> None:
        """End the current connection, as a backend that died would."""
        if self._scope is not None:
            self._scope.cancel()

    @contextlib.asynccontextmanager
    async def __call__(self) -> AsyncIterator[Streams]:
        if self.refuse is not None:
            raise ConnectionRefusedError(self.refuse)
        self.connects += 1
        async with create_client_server_memory_streams() as (client, server), anyio.create_task_group() as tg:
            self._scope = tg.cancel_scope

            async def serve() -> None:
                await self.server.run(server[0], server[1], self.server.create_initialization_options())
                tg.cancel_scope.cancel()

            tg.start_soon(serve)
            yield client
            tg.cancel_scope.cancel()


def memory_transport(server: Server[Any]) -> MemoryTransport:
    return MemoryTransport(server)
