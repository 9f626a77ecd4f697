"""Resource subscriptions through the gateway: passed to the backend that owns the URI, updates relayed.

A front client subscribes with ``resources/subscribe`` (2025-11-25 sessions) or by naming URIs in a
``subscriptions/listen`` stream's ``resourceSubscriptions`` (2026-07-28). The first front subscriber of a
URI subscribes the owning backend (:meth:`BackendConnection.subscribe`: a request on a session-era
backend, the backend's own listen stream on a 2026-07-28 one); the last one to leave unsubscribes it. A
backend's ``notifications/resources/updated`` goes to the front sessions subscribed to that URI and to the
listen streams that asked for it (docs/vmcp.md, "Change notifications").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import mcp_types as types
import structlog
from mcp.server.connection import Connection
from mcp.server.context import ServerRequestContext
from mcp.server.subscriptions import ResourceUpdated
from mcp.shared.exceptions import MCPError

from .backend import BackendConnection
from .notify import FrontNotifier

__all__ = ["ResourceRelay"]

log = structlog.get_logger("gateway.vmcp.resources")

Owner = Callable[[str], Awaitable[BackendConnection | None]]
"""The backend that serves a URI now (None: no backend lists it)."""
Handler = Callable[[Any, Any], Awaitable[Any]]
ListenParams = types.SubscriptionsListenRequestParams
Spawn = Callable[..., None]
"""Runs ``func(*args)`` as a task of the gateway (session teardown cannot await backend I/O)."""


class ResourceRelay:
    """Front resource subscriptions and the backends they are passed to (see the module docstring)."""

    def __init__(self, notifier: FrontNotifier, owner: Owner, spawn: Spawn) -> None:
        self.notifier = notifier
        self.owner = owner
        self.spawn = spawn
        self._known: set[Connection] = set()
        self._sessions: dict[str, set[Connection]] = {}
        self._streams: dict[str, int] = {}
        self._backends: dict[str, BackendConnection] = {}

    # ---- front subscribers -----------------------------------------------------------------------

    async def subscribe(self, uri: str, connection: Connection | None) -> None:
        """A 2025-11-25 session (``connection``) subscribes; an unknown URI is -32602 as for a read."""
        if not await self._hold(uri):
            raise MCPError(types.INVALID_PARAMS, f"Unknown resource: {uri}")
        if connection is not None:
            self._sessions.setdefault(uri, set()).add(connection)
            if connection not in self._known:
                self._known.add(connection)
                connection.exit_stack.callback(self.spawn, self.drop_session, connection)

    async def unsubscribe(self, uri: str, connection: Connection | None) -> None:
        if connection is not None:
            self._sessions.get(uri, set()).discard(connection)
        await self._release(uri)

    async def drop_session(self, connection: Connection) -> None:
        """A session ended: release everything it subscribed to."""
        self._known.discard(connection)
        for uri, connections in list(self._sessions.items()):
            if connection in connections:
                connections.discard(connection)
                await self._release(uri)

    def listen_handler(
        self, listen: Callable[[Any, Any], Awaitable[Any]]
    ) -> Callable[[Any, Any], Awaitable[Any]]:
        """Wrap the ``subscriptions/listen`` handler: its stream's URIs are held while it is open (a URI no
        backend lists is honoured and never fires, as the spec says)."""

        async def handle(
            ctx: ServerRequestContext[Any, Any], params: types.SubscriptionsListenRequestParams
        ) -> Any:
            held: list[str] = []
            try:
                for uri in params.notifications.resource_subscriptions or ():
                    if await self._hold(uri, stream=True):
                        held.append(uri)
                return await listen(ctx, params)
            finally:
                with anyio.CancelScope(shield=True):
                    for uri in held:
                        self._streams[uri] -= 1
                        await self._release(uri)

        return handle

    # ---- backends --------------------------------------------------------------------------------

    async def _hold(self, uri: str, *, stream: bool = False) -> bool:
        backend = self._backends.get(uri)
        if backend is None:
            backend = await self.owner(uri)
            if backend is None:
                return False
            self._backends[uri] = backend
            await backend.subscribe(uri)
        if stream:
            self._streams[uri] = self._streams.get(uri, 0) + 1
        return True

    async def _release(self, uri: str) -> None:
        if self._sessions.get(uri) or self._streams.get(uri):
            return
        self._sessions.pop(uri, None)
        self._streams.pop(uri, None)
        backend = self._backends.pop(uri, None)
        if backend is not None:
            await backend.subscribe(uri, on=False)

    async def updated(self, uri: str) -> None:
        """A backend says ``uri`` changed: tell its subscribed sessions and listen streams."""
        for connection in list(self._sessions.get(uri, ())):
            try:
                with anyio.fail_after(2.0):
                    await connection.send_resource_updated(uri)
            except Exception as exc:  # fan-out boundary: a gone session must not stop the others
                log.debug("resource update not delivered", uri=uri, error=type(exc).__name__)
        await self.notifier.bus.publish(ResourceUpdated(uri=uri))
