"""Change notifications to front clients: ``notifications/{tools,prompts,resources}/list_changed``.

A backend's own list_changed, its tools leaving or coming back with its health, and a config reload
(a member joining or leaving, a filter or composite tool edit) mark the view dirty. One task then
refreshes the stale lists once (no polling: only the lists that change dropped from the cache are
fetched), compares the merged lists with those it last announced, and announces each kind that changed:
on the 2025-11-25 era to every front session seen so far (their ``tools.listChanged`` capability is
advertised), on the 2026-07-28 era on the ``subscriptions/listen`` streams clients opened (the SDK's
:class:`ListenHandler` over an in-memory bus). Changes arriving while a refresh runs collapse into one
more round.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import structlog
from mcp.server.connection import Connection
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    ListenHandler,
    PromptsListChanged,
    ResourcesListChanged,
    ServerEvent,
    ToolsListChanged,
)
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from gateway.sdk_private import session_connection

from .aggregation import AggregatedView

__all__ = ["ChangeNotifier"]

log = structlog.get_logger("gateway.vmcp.notify")

_SEND_TIMEOUT = 5.0
_KINDS: tuple[tuple[str, Callable[[], ServerEvent], str], ...] = (
    ("tools", ToolsListChanged, "send_tool_list_changed"),
    ("prompts", PromptsListChanged, "send_prompt_list_changed"),
    ("resources", ResourcesListChanged, "send_resource_list_changed"),
)


def _signature(view: AggregatedView) -> dict[str, Any]:
    """What clients see of each list, comparable between views."""
    return {
        "tools": view.tools,
        "prompts": view.prompts,
        "resources": (view.resources, view.resource_templates),
    }


class ChangeNotifier:
    """Announces changes of the merged lists to front clients (see the module docstring)."""

    def __init__(self, refresh: Callable[[], Awaitable[AggregatedView]]) -> None:
        self.refresh = refresh
        self.bus = InMemorySubscriptionBus()
        self.listen = ListenHandler(self.bus)
        """The ``subscriptions/listen`` handler of the modern front."""
        self._sessions: weakref.WeakSet[Connection] = weakref.WeakSet()
        self._dirty = anyio.Event()
        self._last: dict[str, Any] | None = None
        self.announced = 0
        """Change notifications announced so far (one per changed kind)."""

    def remember(self, session: object) -> None:
        """The 2025-11-25 connection of a request's session, which may hear notifications (kept weakly:
        a closed one just goes away; 2026-07-28 clients listen on ``subscriptions/listen`` instead)."""
        connection = session_connection(session)
        if connection is not None and connection.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS:
            self._sessions.add(connection)

    def mark(self, *_: object) -> None:
        """Something the lists depend on changed (a backend's lists or health, the config)."""
        self._dirty.set()

    async def run(self) -> None:
        await self.announce_changes()  # the first round only records what clients will see
        while True:
            await self._dirty.wait()
            self._dirty = anyio.Event()
            await self.announce_changes()

    async def announce_changes(self) -> None:
        """Refresh, compare with what was last announced, announce each changed kind."""
        current = _signature(await self.refresh())
        last, self._last = self._last, current
        for kind, event, method in _KINDS:
            if last is None or last[kind] == current[kind]:
                continue
            self.announced += 1
            log.info("list changed", kind=kind, sessions=len(self._sessions))
            await self.bus.publish(event())
            for session in list(self._sessions):
                await self._send(session, method)

    async def _send(self, session: Connection, method: str) -> None:
        # One slow or gone client must not hold up the others.
        with anyio.move_on_after(_SEND_TIMEOUT):
            try:
                await getattr(session, method)()
            except Exception as exc:  # boundary: a closed session is simply forgotten
                self._sessions.discard(session)
                log.debug("session gone", error=str(exc))
