"""One backend session per caller, for outbound credentials bound to the caller (RFC 8693 token exchange).

Why, and the session's life (opened on the caller's first request, fed its latest inbound token, closed
when idle): docs/proxy.md, ``tokenExchange``. :class:`CallerBackends` offers the surface the proxy uses
on a shared connection (``info``, ``hooks``, ``readiness()``) plus :meth:`CallerBackends.connection`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio
import anyio.abc
import mcp_types as types
from mcp.shared.exceptions import MCPError

from gateway.backends.connection import BackendConnection, BackendHooks, BackendInfo

__all__ = ["Caller", "CallerBackends", "SubjectToken"]

logger = logging.getLogger("mcp_operator.backend")


@dataclass(frozen=True)
class Caller:
    """Who a front request comes from: the verified identity and the raw inbound token."""

    identity: str
    token: str


@dataclass
class SubjectToken:
    """The latest inbound token of one caller; read by the transport on every backend HTTP request."""

    value: str

    def get(self) -> str:
        return self.value


@dataclass
class _Entry:
    connection: BackendConnection
    subject: SubjectToken
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    last_used: float = field(default_factory=time.monotonic)


class CallerBackends:
    """Backend sessions keyed by caller identity; see the module docstring."""

    def __init__(
        self,
        make: Callable[[SubjectToken], BackendConnection],
        *,
        hooks: BackendHooks | None = None,
        idle_seconds: float = 600.0,
        max_callers: int = 1000,
    ) -> None:
        self.make = make
        self.hooks = hooks or BackendHooks()
        self.idle_seconds = idle_seconds
        self.max_callers = max_callers
        self.hooks_for: Callable[[str], BackendHooks] | None = None
        """Per-caller hooks (set by the proxy), so one caller's backend reaches only that caller."""
        self._entries: dict[str, _Entry] = {}
        self._task_group: anyio.abc.TaskGroup | None = None

    @property
    def info(self) -> BackendInfo | None:
        """What the most recently used connected backend session reported (all callers share a server)."""
        connected = [e for e in self._entries.values() if e.connection.info is not None]
        if not connected:
            return None
        return max(connected, key=lambda e: e.last_used).connection.info

    @property
    def ready(self) -> bool:
        return self._task_group is not None

    def readiness(self) -> tuple[bool, str]:
        """Ready while the pool runs: a caller's session is opened on that caller's first request."""
        if self._task_group is None:
            return False, "per-caller backend sessions not started"
        up = sum(1 for e in self._entries.values() if e.connection.ready)
        return True, f"per-caller backend sessions: {up} up of {len(self._entries)}"

    def stop(self) -> None:
        """Stop every caller's supervisor (the pool's own task ends when its task group is cancelled)."""
        for entry in self._entries.values():
            entry.connection.stop()

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Own the callers' supervisors and close idle ones; until cancelled."""
        async with anyio.create_task_group() as tg:
            self._task_group = tg
            task_status.started()
            try:
                while True:
                    await anyio.sleep(min(60.0, self.idle_seconds / 2))
                    self._close_idle()
            finally:
                self._task_group = None
                for entry in self._entries.values():
                    entry.connection.stop()
                tg.cancel_scope.cancel()

    def _close_idle(self) -> None:
        limit = time.monotonic() - self.idle_seconds
        for identity, entry in list(self._entries.items()):
            if entry.last_used < limit:
                logger.info("closing the idle backend session of %s", identity)
                self._drop(identity)

    def _drop(self, identity: str) -> None:
        entry = self._entries.pop(identity)
        entry.connection.stop()
        entry.scope.cancel()

    def _entry(self, caller: Caller) -> _Entry:
        entry = self._entries.get(caller.identity)
        if entry is None:
            if self._task_group is None:
                raise MCPError(code=-32001, message="the proxy is not serving backend sessions yet")
            if len(self._entries) >= self.max_callers:
                oldest = min(self._entries, key=lambda key: self._entries[key].last_used)
                self._drop(oldest)
            subject = SubjectToken(caller.token)
            connection = self.make(subject)
            connection.hooks = self.hooks_for(caller.identity) if self.hooks_for is not None else self.hooks
            entry = _Entry(connection, subject)
            self._entries[caller.identity] = entry
            self._task_group.start_soon(self._supervise, entry)
        entry.subject.value = caller.token  # the caller's newest token is the next exchange's subject
        entry.last_used = time.monotonic()
        return entry

    @staticmethod
    async def _supervise(entry: _Entry) -> None:
        with entry.scope:
            await entry.connection.run()

    def connection(self, caller: Caller | None) -> BackendConnection:
        """The caller's own backend session (opened on first use)."""
        if caller is None:
            raise MCPError(
                code=types.INVALID_REQUEST,
                message="this proxy's backend needs an authenticated caller (token exchange); configure oidc",
            )
        return self._entry(caller).connection
