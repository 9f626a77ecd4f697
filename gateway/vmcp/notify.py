"""Change notifications to front clients: ``notifications/{tools,prompts,resources}/list_changed``.

When the gateway's merged lists change (a backend's own change, a member joining or leaving, a health
flip, a config edit; docs/vmcp.md "Change notifications"), every front client that can receive them is
told once per change:

- 2025-11-25 sessions (``/mcp`` with ``Mcp-Session-Id``, legacy ``/sse``): on the session's own stream
  (the GET stream of a streamable-HTTP session), through the SDK's ``Connection.send_*_list_changed``;
- 2026-07-28 clients: on their ``subscriptions/listen`` streams, through the SDK's
  :class:`~mcp.server.subscriptions.ListenHandler` over an in-process bus.

:class:`NotifyingServer` advertises ``listChanged`` in the session era (the SDK derives it for the
modern era from ``subscriptions/listen`` being served).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import anyio
import structlog
from mcp.server.connection import Connection
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    ListenHandler,
    PromptsListChanged,
    ResourcesListChanged,
    ServerEvent,
    ToolsListChanged,
)

from gateway.sdk_private import connection_of

__all__ = ["ChangedKind", "FrontNotifier", "NotifyingServer"]

log = structlog.get_logger("gateway.vmcp.notify")

ChangedKind = Literal["tools", "prompts", "resources"]

_EVENTS: dict[ChangedKind, ServerEvent] = {
    "tools": ToolsListChanged(),
    "prompts": PromptsListChanged(),
    "resources": ResourcesListChanged(),
}

_SEND_TIMEOUT = 2.0
"""How long one session's notification may take: a client that stopped reading is skipped, not waited on."""


class NotifyingServer(Server[Any]):
    """A low-level server whose session-era ``initialize`` answer advertises ``listChanged`` for tools,
    prompts and resources (the gateway sends them)."""

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        options = notification_options or NotificationOptions(
            prompts_changed=True, resources_changed=True, tools_changed=True
        )
        return super().create_initialization_options(options, experimental_capabilities, extensions)


class FrontNotifier:
    """Knows the front's session-era sessions and its listen streams; :meth:`publish` tells them all."""

    def __init__(self) -> None:
        self.bus = InMemorySubscriptionBus()
        self.listen = ListenHandler(self.bus)
        """The ``subscriptions/listen`` handler to register on the server."""
        self._sessions: set[Connection] = set()
        self.sent = 0
        """Notifications delivered to session-era sessions (for tests and /status)."""

    def install(self, server: Server[Any]) -> None:
        """Observe ``initialize`` on ``server`` to learn its session-era sessions."""
        server.middleware.append(self._observe)

    async def _observe(self, ctx: ServerRequestContext[Any, Any], call_next: Any) -> Any:
        if ctx.method == "initialize":
            connection = connection_of(ctx)
            if connection is not None and connection not in self._sessions:
                self._sessions.add(connection)
                connection.exit_stack.callback(self._sessions.discard, connection)
        return await call_next(ctx)

    @property
    def sessions(self) -> int:
        return len(self._sessions)

    async def publish(self, kinds: Iterable[ChangedKind]) -> None:
        """One notification per changed kind to every session and listen stream."""
        kinds = list(kinds)
        if not kinds:
            return
        log.info("lists changed; notifying front clients", kinds=kinds, sessions=len(self._sessions))
        async with anyio.create_task_group() as tg:
            for session in list(self._sessions):
                tg.start_soon(self._notify_session, session, kinds)
        for kind in kinds:
            await self.bus.publish(_EVENTS[kind])

    async def _notify_session(self, session: Connection, kinds: list[ChangedKind]) -> None:
        senders = {
            "tools": session.send_tool_list_changed,
            "prompts": session.send_prompt_list_changed,
            "resources": session.send_resource_list_changed,
        }
        try:
            with anyio.fail_after(_SEND_TIMEOUT):
                for kind in kinds:
                    await senders[kind]()
                    self.sent += 1
        except Exception as exc:  # fan-out boundary: a closed or stuck session must not stop the others
            self._sessions.discard(session)
            log.debug("session dropped from change notifications", error=type(exc).__name__)
