"""One long-lived connection to one backend MCP server, with list caching, health and a breaker.

A :class:`BackendConnection` runs a supervisor task (:meth:`BackendConnection.run`) that connects (the
protocol era is detected per backend: ``mode="auto"`` over streamable HTTP, legacy for SSE), keeps the
session, probes it every ``healthCheckInterval`` with a fresh ``tools/list`` and reconnects after a
failure. Calls from the front go through :meth:`call`, which honours the circuit breaker and the
per-backend timeout and counts in-flight requests so a removed backend is drained, not cut off.

List results are cached per kind (tools, prompts, resources, resource templates) for the backend's own
``ttlMs`` (2026-07-28 backends) or ``defaultListTtl`` (legacy backends, which send none); a
``notifications/*/list_changed`` from the backend drops the matching entry at once.

The only I/O seam is ``opener``: ``(BackendConfig, httpx2.Auth | None) -> async context manager of a
connected mcp.Client``. Tests may pass their own (e.g. an in-process server).
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Generator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import anyio
import anyio.abc
import anyio.lowlevel
import httpx2
import mcp_types as types
import structlog
from mcp import Client
from mcp.client.session import IncomingMessage, MessageHandlerFnT
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from api.vmcp_config import BackendConfig, OperationalConfig

from .aggregation import BackendCapabilities
from .health import BackendHealth, CircuitBreaker

__all__ = [
    "BackendConnection",
    "BackendUnavailableError",
    "ListKind",
    "Opener",
    "open_backend_client",
]

log = structlog.get_logger("gateway.vmcp.backend")

ListKind = Literal["tools", "prompts", "resources", "resource_templates"]
ALL_KINDS: tuple[ListKind, ...] = ("tools", "prompts", "resources", "resource_templates")

MessageHandler = MessageHandlerFnT
Opener = Callable[[BackendConfig, httpx2.Auth | None, MessageHandler], AbstractAsyncContextManager[Client]]
HeaderSource = Callable[[], Awaitable[dict[str, str]]]
_T = TypeVar("_T")

_NOTIFICATION_KIND: dict[type[Any], ListKind] = {
    types.ToolListChangedNotification: "tools",
    types.PromptListChangedNotification: "prompts",
    types.ResourceListChangedNotification: "resources",
}


class BackendUnavailableError(Exception):
    """The backend cannot take requests now (not connected, breaker open, or it just failed)."""


class _HeaderAuth(httpx2.Auth):
    """Adds the outbound credential headers to every request (fresh per request: tokens refresh)."""

    def __init__(self, source: HeaderSource) -> None:
        self.source = source

    async def async_auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        for name, value in (await self.source()).items():
            request.headers[name] = value
        yield request

    def sync_auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
        raise RuntimeError("the gateway only uses async HTTP clients")


@asynccontextmanager
async def open_backend_client(
    config: BackendConfig, auth: httpx2.Auth | None, message_handler: MessageHandler
) -> AsyncIterator[Client]:
    """The default opener: streamable HTTP with era detection, or legacy HTTP+SSE."""
    if config.transport == "sse":
        transport = sse_client(config.url, auth=auth)
        async with Client(transport, mode="legacy", cache=None, message_handler=message_handler) as client:
            yield client
        return
    timeout = httpx2.Timeout(30.0, read=300.0)
    async with (
        httpx2.AsyncClient(auth=auth, timeout=timeout) as http,
        Client(
            streamable_http_client(config.url, http_client=http),
            mode="auto",
            cache=None,
            message_handler=message_handler,
        ) as client,
    ):
        yield client


@dataclass
class _CacheEntry:
    items: list[Any]
    expires: float


class BackendConnection:
    """The gateway's side of one backend (see the module docstring)."""

    def __init__(
        self,
        config: BackendConfig,
        operational: OperationalConfig,
        *,
        headers: HeaderSource | None = None,
        opener: Opener = open_backend_client,
        on_lists_changed: Callable[[str], None] = lambda _name: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.name = config.name
        self.operational = operational
        self.opener = opener
        self.auth = _HeaderAuth(headers) if headers is not None else None
        self.on_lists_changed = on_lists_changed
        self.clock = clock
        failure = operational.failure_handling
        self.health = BackendHealth(
            name=config.name, url=config.url, breaker=CircuitBreaker(failure.circuit_breaker, clock=clock)
        )
        self.generation = 0
        """Bumped whenever a cached list changes, so the gateway knows to re-aggregate."""
        self.in_flight = 0
        self._client: Client | None = None
        self._cache: dict[ListKind, _CacheEntry] = {}
        self._broken = anyio.Event()
        self._stopping = False
        self._scope: anyio.CancelScope | None = None
        self._idle = anyio.Event()
        self._idle.set()

    # ---- lifecycle -------------------------------------------------------------------------------

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Connect, keep healthy, reconnect; returns after :meth:`stop`."""
        task_status.started()
        failure = self.operational.failure_handling
        with anyio.CancelScope() as self._scope:
            while not self._stopping:
                if self.health.breaker.allow():
                    await self._connected_session()
                with anyio.move_on_after(failure.health_check_interval):
                    await self._broken.wait()
                self._broken = anyio.Event()

    async def _connected_session(self) -> None:
        timeouts = self.operational.timeouts
        try:
            with anyio.CancelScope(deadline=anyio.current_time() + timeouts.connect) as scope:
                async with self.opener(self.config, self.auth, self._on_message) as client:
                    scope.deadline = math.inf
                    await self._refresh("tools", client)
                    self._install(client)
                    self._record_ok()
                    log.info("backend connected", backend=self.name, protocol=client.protocol_version)
                    await self._probe_until_broken(client)
            if scope.cancelled_caught:
                self._record_error(f"could not connect within {timeouts.connect:g}s")
        except Exception as exc:  # boundary: any transport/protocol failure of this backend
            self._record_error(_describe(exc))
        finally:
            self._uninstall()

    def _install(self, client: Client) -> None:
        self._client = client
        self.health.connected = True
        self.health.protocol_version = client.protocol_version

    async def _on_message(self, message: IncomingMessage) -> None:
        """Backend notifications: a list_changed drops that list from the cache."""
        kind = _NOTIFICATION_KIND.get(type(message))
        if kind is not None:
            self.invalidate(kind)
        await anyio.lowlevel.checkpoint()

    def _uninstall(self) -> None:
        self._client = None
        self.health.connected = False
        if self._cache:
            self._cache.clear()
            self.generation += 1
            self.on_lists_changed(self.name)

    async def _probe_until_broken(self, client: Client) -> None:
        failure = self.operational.failure_handling
        while not self._stopping:
            with anyio.move_on_after(failure.health_check_interval):
                await self._broken.wait()
            if self._stopping:
                break
            if self._broken.is_set():
                raise BackendUnavailableError(self.health.last_error or "backend failed")
            with anyio.fail_after(failure.health_check_timeout):
                await self._refresh("tools", client)
            self._record_ok()
        # Stopping: keep the session open for the calls still in flight; stop() bounds the wait.
        await self._idle.wait()

    async def stop(self, *, drain_timeout: float) -> None:
        """Stop after in-flight calls finish (at most ``drain_timeout`` seconds), then disconnect."""
        self._stopping = True
        with anyio.move_on_after(drain_timeout):
            await self._idle.wait()
        if self._scope is not None:
            self._scope.cancel()

    def _record_ok(self) -> None:
        self.health.breaker.record_success()
        self.health.last_error = None
        self.health.last_check_wall = time.time()

    def _record_error(self, message: str) -> None:
        if self._stopping:
            return
        self.health.breaker.record_failure()
        self.health.last_error = message
        self.health.last_check_wall = time.time()
        log.warning("backend failed", backend=self.name, error=message, breaker=self.health.breaker.state)

    # ---- lists -----------------------------------------------------------------------------------

    def invalidate(self, kind: ListKind) -> None:
        if self._cache.pop(kind, None) is not None:
            self.generation += 1
            self.on_lists_changed(self.name)

    def cached(self) -> BackendCapabilities:
        """What is cached now (possibly stale or partial); empty when disconnected."""

        def items(kind: ListKind) -> list[Any]:
            entry = self._cache.get(kind)
            return entry.items if entry is not None else []

        return BackendCapabilities(
            tools=items("tools"),
            prompts=items("prompts"),
            resources=items("resources"),
            resource_templates=items("resource_templates"),
        )

    def is_fresh(self, kind: ListKind) -> bool:
        entry = self._cache.get(kind)
        return entry is not None and entry.expires > self.clock()

    async def ensure_fresh(self, kinds: tuple[ListKind, ...]) -> None:
        """Refetch the stale kinds (within the list timeout); errors count against the breaker."""
        client = self._client
        stale = [k for k in kinds if not self.is_fresh(k)]
        if client is None or not stale:
            return
        try:
            with anyio.fail_after(self.operational.timeouts.list_for(self.name)):
                for kind in stale:
                    await self._refresh(kind, client)
        except Exception as exc:  # boundary: keep serving the other backends
            self._fail(exc)

    async def _refresh(self, kind: ListKind, client: Client) -> None:
        if not self._supports(kind, client):
            items: list[Any] = []
            ttl_ms: int | None = None
        else:
            items, ttl_ms = await _fetch_all(client, kind)
        ttl = ttl_ms / 1000.0 if ttl_ms is not None else self.operational.default_list_ttl
        old = self._cache.get(kind)
        self._cache[kind] = _CacheEntry(items, self.clock() + ttl)
        if kind == "tools":
            self.health.tool_count = len(items)
        if old is None or old.items != items:
            self.generation += 1
            self.on_lists_changed(self.name)

    @staticmethod
    def _supports(kind: ListKind, client: Client) -> bool:
        caps = client.server_capabilities
        if kind == "tools":
            return caps.tools is not None
        if kind == "prompts":
            return caps.prompts is not None
        return caps.resources is not None

    # ---- calls -----------------------------------------------------------------------------------

    async def call(self, operation: Callable[[Client], Awaitable[_T]]) -> _T:
        """Run one request on this backend with its call timeout and the breaker."""
        client = self._client
        if client is None:
            raise BackendUnavailableError(
                f"backend {self.name!r} is not connected"
                + (f": {self.health.last_error}" if self.health.last_error else "")
            )
        if self.health.breaker.state == "open" and not self.health.breaker.allow():
            raise BackendUnavailableError(
                f"backend {self.name!r} is failing (circuit open): {self.health.last_error}"
            )
        self.in_flight += 1
        self._idle = anyio.Event() if self.in_flight == 1 else self._idle
        try:
            with anyio.fail_after(self.operational.timeouts.call_for(self.name)):
                result = await operation(client)
        except TimeoutError as exc:
            timeout = self.operational.timeouts.call_for(self.name)
            self._fail(exc, keep_connection=True)
            raise BackendUnavailableError(
                f"backend {self.name!r} did not answer within {timeout:g}s"
            ) from exc
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, httpx2.TransportError, OSError) as exc:
            self._fail(exc)
            raise BackendUnavailableError(f"backend {self.name!r} failed: {_describe(exc)}") from exc
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self._idle.set()
        self.health.breaker.record_success()
        return result

    def _fail(self, exc: BaseException, *, keep_connection: bool = False) -> None:
        self._record_error(_describe(exc))
        if not keep_connection:
            self._broken.set()


async def _fetch_all(client: Client, kind: ListKind) -> tuple[list[Any], int | None]:
    """Every page of one list kind, and the smallest ttlMs the backend gave (None = none given)."""
    items: list[Any] = []
    ttl: int | None = None
    cursor: str | None = None
    for _ in range(100):  # a paginator that never ends cannot hang the gateway
        result: Any
        if kind == "tools":
            result = await client.list_tools(cursor=cursor, cache_mode="bypass")
            items += result.tools
        elif kind == "prompts":
            result = await client.list_prompts(cursor=cursor, cache_mode="bypass")
            items += result.prompts
        elif kind == "resources":
            result = await client.list_resources(cursor=cursor, cache_mode="bypass")
            items += result.resources
        else:
            result = await client.list_resource_templates(cursor=cursor, cache_mode="bypass")
            items += result.resource_templates
        page_ttl = getattr(result, "ttl_ms", None)
        if page_ttl is not None:
            ttl = page_ttl if ttl is None else min(ttl, page_ttl)
        cursor = result.next_cursor
        if cursor is None:
            break
    return items, ttl


def _describe(exc: BaseException) -> str:
    """A one-line error for status and logs (exception groups unwrapped to their first leaf)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text
