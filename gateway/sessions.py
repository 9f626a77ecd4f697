"""The front's 2025-11-25 sessions as the fast path needs to see them.

The SDK's ``StreamableHTTPSessionManager`` keeps each ``Mcp-Session-Id`` session's transport, owner and
idle countdown in private state, and the session's negotiated protocol version and client capabilities
on a ``Connection`` that only its request handlers see. :class:`SessionTable` reads that state so the
fast path (:mod:`gateway.fastpath`) can answer a session's plain requests itself, and keeps the SDK's
bookkeeping exact while it does:

- :meth:`SessionTable.lease` answers None (= leave the request to the SDK) unless the session is one the
  SDK would serve this request on: known to the manager, not terminated, not expiring, owned by the same
  authenticated caller (the SDK's ``authorization_context`` comparison), its ``initialize`` accepted, and
  its client declared no sampling, elicitation or roots capability (the backend's server-to-client
  requests are bridged to SDK-path requests only);
- a :class:`SessionLease` holds the session while the request is served exactly as the SDK's transport
  does: the idle countdown is suspended while any request is in flight and restarts when the last ends.

Connections are learnt from the SDK's own ``initialize`` (a server middleware that looks only at that
method) and forgotten when the SDK closes the connection. The SDK's private names are read here only
(``mcp`` is pinned in requirements/constraints.txt; tests/dataplane/test_proxy_fastpath.py exercises
every one of them through a real session).
"""

from __future__ import annotations

import math
from types import TracebackType
from typing import Any

import anyio
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, authorization_context
from mcp.server.connection import Connection
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http import StreamableHTTPServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.types import Scope

__all__ = ["SessionLease", "SessionTable"]


class SessionLease:
    """One request's hold on its session (a context manager); see the module docstring."""

    __slots__ = ("connection", "protocol_version", "session_id", "transport")

    def __init__(
        self, session_id: str, transport: StreamableHTTPServerTransport, connection: Connection
    ) -> None:
        self.session_id = session_id
        self.transport = transport
        self.connection = connection
        self.protocol_version = connection.protocol_version
        """The version negotiated at ``initialize``: what the SDK validates and shapes by."""

    def __enter__(self) -> SessionLease:
        transport = self.transport
        if transport.idle_scope is not None and transport._idle_timeout is not None:
            transport._requests_in_flight += 1
            transport.idle_scope.deadline = math.inf
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        transport = self.transport
        timeout = transport._idle_timeout
        if transport.idle_scope is not None and timeout is not None:
            transport._requests_in_flight -= 1
            if not transport._requests_in_flight:
                transport.idle_scope.deadline = anyio.current_time() + timeout


class SessionTable:
    """The manager's sessions and their connections; installs its ``initialize`` observer on ``server``."""

    def __init__(self, manager: StreamableHTTPSessionManager, server: Server[Any]) -> None:
        self.manager = manager
        self.connections: dict[str, Connection] = {}
        server.middleware.append(self._observe)

    async def _observe(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method == "initialize":
            connection: Connection = ctx.session._connection
            session_id = connection.session_id
            if session_id is not None and session_id not in self.connections:
                self.connections[session_id] = connection
                connection.exit_stack.callback(self.connections.pop, session_id, None)
        return await call_next(ctx)

    def lease(self, session_id: str, scope: Scope) -> SessionLease | None:
        """A hold on the session for this request, or None when the SDK must serve it."""
        connection = self.connections.get(session_id)
        transport = self.manager._server_instances.get(session_id)
        if connection is None or transport is None or transport.is_terminated:
            return None
        if (
            not connection.initialize_accepted
            or connection.protocol_version not in HANDSHAKE_PROTOCOL_VERSIONS
        ):
            return None
        idle = transport.idle_scope
        if idle is not None and idle.cancel_called:
            return None
        user = scope.get("user")
        requestor = authorization_context(user) if isinstance(user, AuthenticatedUser) else None
        if requestor != self.manager._session_owners.get(session_id):
            return None
        capabilities = connection.client_capabilities
        if capabilities is not None and (
            capabilities.sampling is not None
            or capabilities.elicitation is not None
            or capabilities.roots is not None
        ):
            return None
        return SessionLease(session_id, transport, connection)
