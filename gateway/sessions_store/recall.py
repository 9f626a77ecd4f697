"""The front's shared sessions: a session opened on one replica continues on any other.

:class:`SessionRecall` sits in front of the SDK's ``/mcp`` handler (and of the fast path). It records
every session at ``initialize`` (an observer on the server's middleware chain), resumes a session this
replica does not know from its record before the SDK sees the request (instead of the SDK's 404),
refreshes the record's TTL while the session is used and forgets it on ``DELETE``. A session whose
record cannot be read (unknown, expired, Redis down) gets the SDK's own 404 "Session not found", on
which MCP clients start a new session. docs/scaling.md tells the whole story.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import anyio
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.sdk_private import SessionTable, connection_of, has_session, resume_session, session_owner

from .store import SessionRecord, SessionStore

__all__ = ["SessionRecall"]

logger = logging.getLogger("mcp_operator.sessions")

_SESSION_HEADER = b"mcp-session-id"
_MAX_TRACKED = 10_000


def _session_id(scope: Scope) -> str | None:
    for key, value in scope["headers"]:
        if key == _SESSION_HEADER:
            return str(value.decode("latin-1"))
    return None


class SessionRecall:
    """ASGI middleware around the streamable-HTTP handler (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        manager: StreamableHTTPSessionManager,
        server: Server[Any],
        store: SessionStore,
        *,
        table: SessionTable | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.manager = manager
        self.store = store
        self.table = table
        self.clock = clock
        self.refreshed: dict[str, float] = {}
        """When this replica last refreshed each session's TTL."""
        self.refresh_every = store.ttl / 4
        self.resuming: dict[str, anyio.Event] = {}
        server.middleware.insert(0, self._observe)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        session_id = _session_id(scope) if scope["type"] == "http" else None
        if session_id is None:
            await self.app(scope, receive, send)
            return
        if has_session(self.manager, session_id):
            await self._refresh(session_id)
        else:
            await self._resume(session_id, scope)
        await self.app(scope, receive, send)
        if scope["method"] == "DELETE" and not has_session(self.manager, session_id):
            self.refreshed.pop(session_id, None)
            await self.store.forget(session_id)

    async def _refresh(self, session_id: str) -> None:
        now = self.clock()
        if now - self.refreshed.get(session_id, now) < self.refresh_every:
            self.refreshed.setdefault(session_id, now)
            return
        self._track(session_id, now)
        await self.store.refresh(session_id)

    def _track(self, session_id: str, now: float) -> None:
        if len(self.refreshed) >= _MAX_TRACKED:  # sessions ended elsewhere leave entries: drop old ones
            horizon = now - self.store.ttl
            self.refreshed = {k: t for k, t in self.refreshed.items() if t > horizon}
        self.refreshed[session_id] = now

    async def _resume(self, session_id: str, scope: Scope) -> None:
        """Open the session here from its record; on any miss the SDK answers 404 as usual."""
        pending = self.resuming.get(session_id)
        if pending is not None:  # another request of this session is resuming it: wait for that one
            await pending.wait()
            return
        done = self.resuming[session_id] = anyio.Event()
        try:
            record = await self.store.load(session_id)
            if record is None:
                self.store.not_found.inc()
                return
            if record.owner != session_owner(scope):
                logger.warning("session %s: credential differs from the one that opened it", session_id[:64])
                return
            connection = await resume_session(
                self.manager,
                session_id,
                protocol_version=record.protocol_version,
                client_params=record.client_params,
                scope=scope,
            )
            if connection is None:
                return
            if self.table is not None:
                self.table.adopt(connection)
            self.store.resumed.inc()
            self._track(session_id, self.clock())
        finally:
            del self.resuming[session_id]
            done.set()

    async def _observe(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        result = await call_next(ctx)
        if ctx.method != "initialize" or not isinstance(result, dict):
            return result
        connection = connection_of(ctx)
        version = result.get("protocolVersion")
        if connection is None or connection.session_id is None or not isinstance(version, str):
            return result
        scope = getattr(ctx.request, "scope", None)
        params = dict(ctx.params) if ctx.params is not None else None
        record = SessionRecord(version, params, session_owner(scope) if isinstance(scope, dict) else None)
        if await self.store.save(connection.session_id, record):
            self._track(connection.session_id, self.clock())
        return result
