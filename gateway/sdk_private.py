"""Every private name of the ``mcp`` SDK (and of anyio) the data plane uses, behind one import-time probe.

Why and what happens when one is missing: docs/proxy.md ("Coupling to the SDK's private names"). Names
are read here and nowhere else (:data:`PRIVATE_NAMES`, pinned by a unit test); with one missing,
:data:`STATUS` says so, the proxy builds without its fast path and each user of the name takes the SDK's
public way (stdio under ``stdio_client``, era detection by ``discover()`` / ``initialize()``, no session
admitted by :class:`SessionTable`, the open-session count without the manager's sessions).

:meth:`SessionTable.lease` admits a 2025-11-25 session only where the SDK would serve the request on it
(docs/proxy.md, "2025-11-25 sessions"); a :class:`SessionLease` suspends the idle countdown while the
request runs, as the SDK's transport does.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
from mcp.client.session import ClientSession
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, authorization_context
from mcp.server.connection import Connection
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http import StreamableHTTPServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.types import Scope

__all__ = [
    "PRIVATE_NAMES",
    "STATUS",
    "ProbeStatus",
    "SessionLease",
    "SessionTable",
    "StdioHelpers",
    "connection_of",
    "negotiate",
    "open_sessions",
    "probe",
    "raw_stdin",
    "stdio_helpers",
]

logger = logging.getLogger("mcp_operator.proxy")

PRIVATE_NAMES: tuple[str, ...] = (
    "anyio._backends._asyncio.StreamWriterWrapper._stream",
    "mcp.client._probe.negotiate_auto",
    "mcp.client.stdio._create_platform_compatible_process",
    "mcp.client.stdio._drain_stdout",
    "mcp.client.stdio._stop_server_process",
    "mcp.server.session.ServerSession._connection",
    "mcp.server.streamable_http.StreamableHTTPServerTransport._idle_timeout",
    "mcp.server.streamable_http.StreamableHTTPServerTransport._requests_in_flight",
    "mcp.server.streamable_http_manager.StreamableHTTPSessionManager._server_instances",
    "mcp.server.streamable_http_manager.StreamableHTTPSessionManager._session_owners",
)
"""``module.name`` or ``module.Class._attribute`` (an attribute set by the class's constructor)."""


def _sample(qualified_class: str) -> object:
    """An instance of a class whose private instance attributes are probed (built without I/O)."""
    if qualified_class.endswith("StreamWriterWrapper"):
        from anyio._backends._asyncio import StreamWriterWrapper  # noqa: PLC0415 (probed name)

        return StreamWriterWrapper(None)  # type: ignore[arg-type]
    if qualified_class.endswith("ServerSession"):
        from mcp.server.session import ServerSession  # noqa: PLC0415 (probed name)

        return ServerSession(None, Connection(None, protocol_version="2025-11-25"))  # type: ignore[arg-type]
    if qualified_class.endswith("StreamableHTTPServerTransport"):
        return StreamableHTTPServerTransport(mcp_session_id=None, idle_timeout=1.0)
    return StreamableHTTPSessionManager(app=Server("probe"))


def _present(name: str, samples: dict[str, object]) -> bool:
    path, attribute = name.rsplit(".", 1)
    try:
        if attribute.startswith("_") and path.rsplit(".", 1)[-1][:1].isupper():
            if path not in samples:
                samples[path] = _sample(path)
            return hasattr(samples[path], attribute)
        return hasattr(importlib.import_module(path), attribute)
    except Exception:  # a moved module or a changed constructor: the name is not usable as we use it
        return False


@dataclass(frozen=True)
class ProbeStatus:
    """What :func:`probe` found."""

    missing: tuple[str, ...]

    @property
    def fast_path(self) -> bool:
        """Whether every private name is there (the proxy's fast path may run)."""
        return not self.missing

    def has(self, name: str) -> bool:
        return name not in self.missing


def probe() -> ProbeStatus:
    """Check that every name of :data:`PRIVATE_NAMES` exists; one warning when some do not."""
    samples: dict[str, object] = {}
    status = ProbeStatus(tuple(name for name in PRIVATE_NAMES if not _present(name, samples)))
    if status.missing:
        logger.warning(
            "proxy fast path off: the installed mcp SDK lacks %s; serving every request through the SDK",
            ", ".join(status.missing),
        )
    return status


STATUS = probe()
"""The import-time probe's answer (tests replace it to hide a name)."""


# -- stdio process helpers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StdioHelpers:
    """The SDK's own stdio process lifecycle (spawn in a new group; drain; stdin close, SIGTERM, SIGKILL)."""

    spawn: Callable[..., Any]
    drain_stdout: Callable[[Any], Any]
    stop: Callable[[Any], Any]


def stdio_helpers() -> StdioHelpers | None:
    """The SDK's stdio helpers, or None when one is missing (then use the SDK's ``stdio_client``)."""
    names = ("_create_platform_compatible_process", "_drain_stdout", "_stop_server_process")
    if not all(STATUS.has(f"mcp.client.stdio.{name}") for name in names):
        return None
    stdio = importlib.import_module("mcp.client.stdio")
    return StdioHelpers(
        stdio._create_platform_compatible_process, stdio._drain_stdout, stdio._stop_server_process
    )


def raw_stdin(stdin: object) -> asyncio.StreamWriter | None:
    """asyncio's writer under anyio's stdin wrapper (written without anyio's per-send checkpoints)."""
    if not STATUS.has("anyio._backends._asyncio.StreamWriterWrapper._stream"):
        return None
    stream = getattr(stdin, "_stream", None)
    return stream if isinstance(stream, asyncio.StreamWriter) else None


# -- backend era detection -----------------------------------------------------------------------------


async def negotiate(session: ClientSession) -> None:
    """The SDK's ``mode="auto"`` era detection (``server/discover`` first, ``initialize`` fallback)."""
    if STATUS.has("mcp.client._probe.negotiate_auto"):
        await importlib.import_module("mcp.client._probe").negotiate_auto(session)
        return
    try:
        await session.discover()
    except (MCPError, RuntimeError):
        await session.initialize()


# -- the front's 2025-11-25 sessions -------------------------------------------------------------------


def connection_of(ctx: ServerRequestContext[Any, Any]) -> Connection | None:
    """The request's per-client ``Connection`` (None without the SDK's private name: the gateway's
    session-era change notifications are then off)."""
    if not STATUS.has("mcp.server.session.ServerSession._connection"):
        return None
    connection: Connection = ctx.session._connection
    return connection


def open_sessions(manager: StreamableHTTPSessionManager) -> int:
    """The session manager's open sessions (0 when its private table is not there)."""
    sessions: dict[str, Any] = getattr(manager, "_server_instances", {})
    return len(sessions)


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

    def __exit__(self, *exc_info: object) -> None:
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
        if STATUS.fast_path:
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
