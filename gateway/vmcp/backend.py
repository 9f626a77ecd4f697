"""The gateway's side of one backend: the backend layer's supervisor plus list cache, health and breaker.

What the probe, the breaker and the list caches do is in docs/vmcp.md ("Runtime behaviour").
:meth:`BackendConnection.call` honours the breaker and the per-backend timeout and counts in-flight calls
so a removed backend is drained, not cut off. The I/O seam is ``transport`` (``BackendConfig ->
TransportFactory``; tests pass :func:`gateway.backends.testing.memory_transport`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import anyio
import anyio.abc
import anyio.lowlevel
import httpx2
import mcp_types as types
from mcp.client.session import ClientSession, IncomingMessage
from mcp.client.subscriptions import (
    PromptsListChanged,
    ResourcesListChanged,
    ResourceUpdated,
    ServerEvent,
    ToolsListChanged,
    listen,
)
from mcp.shared.dispatcher import ProgressFnT
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel

from api.vmcp_config import BackendConfig, OperationalConfig
from gateway.backends.connection import BACKEND_UNAVAILABLE, BackendHooks, TransportFactory, describe
from gateway.backends.connection import BackendConnection as Supervisor
from gateway.backends.http import http_transport

from .aggregation import BackendCapabilities
from .health import BackendHealth, CircuitBreaker

__all__ = [
    "BackendConnection",
    "BackendUnavailableError",
    "CircuitOpenError",
    "ListKind",
    "TransportFor",
    "open_backend_transport",
]

logger = logging.getLogger("mcp_operator.backend")

ListKind = Literal["tools", "prompts", "resources", "resource_templates"]
TransportFor = Callable[[BackendConfig], TransportFactory]
ResultT = TypeVar("ResultT", bound=BaseModel)

_NOTIFICATION_KIND: dict[type[Any], ListKind] = {
    types.ToolListChangedNotification: "tools",
    types.PromptListChangedNotification: "prompts",
    types.ResourceListChangedNotification: "resources",
}
_EVENT_KIND: dict[type[ServerEvent], ListKind] = {
    ToolsListChanged: "tools",
    PromptsListChanged: "prompts",
    ResourcesListChanged: "resources",
}
_LISTS: dict[ListKind, tuple[str, type[BaseModel]]] = {
    "tools": ("tools/list", types.ListToolsResult),
    "prompts": ("prompts/list", types.ListPromptsResult),
    "resources": ("resources/list", types.ListResourcesResult),
    "resource_templates": ("resources/templates/list", types.ListResourceTemplatesResult),
}
"""Per list kind: the method and its result model (whose item field, like BackendCapabilities' field, is
named after the kind)."""


class BackendUnavailableError(Exception):
    """The backend cannot take requests now (not connected, breaker open, or it just failed)."""


class CircuitOpenError(BackendUnavailableError):
    """The backend is refused at once: its circuit is open or it is unhealthy (answered as a JSON-RPC
    error naming it, never forwarded)."""


def open_backend_transport(config: BackendConfig) -> TransportFactory:
    """The default transport: the backend layer's HTTP policy for the member's URL, with the outbound
    credentials of its ``auth`` / ``headerForward``, as for the proxy."""
    return http_transport(
        config.url,
        "sse" if config.transport == "sse" else "streamable-http",
        connect_timeout=30.0,
        allow_private=config.allow_private_endpoint is not False,
        auth=config.auth,
        header_forward=config.header_forward,
        ca_bundle=config.ca_bundle,
    )


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
        transport: TransportFor = open_backend_transport,
        on_lists_changed: Callable[[str], None] = lambda _name: None,
        on_resource_updated: Callable[[str], None] = lambda _uri: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = config.name
        self.operational = operational
        self.on_lists_changed = on_lists_changed
        self.on_resource_updated = on_resource_updated
        self.subscriptions: set[str] = set()
        """Resource URIs front clients subscribed to through this backend (kept across reconnects)."""
        self._relisten = anyio.Event()
        self.clock = clock
        self.health = BackendHealth(
            name=config.name,
            url=config.url,
            breaker=CircuitBreaker(operational.failure_handling.circuit_breaker, clock=clock),
            unhealthy_threshold=operational.failure_handling.unhealthy_threshold,
        )
        self.listed = True
        """:attr:`BackendHealth.listed` as of the last probe or call, kept as a flag so that routing and
        the view read no clock."""
        self.connection = Supervisor(
            transport(config),
            description=config.name,
            hooks=BackendHooks(
                on_state=self._on_state, on_error=self._record_error, on_message=self._on_message
            ),
            call_timeout=None,  # call() bounds each call with the backend's own timeout
            connect_timeout=operational.timeouts.connect,
            bridge_client_requests=False,
            session_era_first=config.transport == "sse",  # a legacy SSE endpoint speaks only that era
        )
        self.generation = 0
        """Bumped whenever a cached list changes, so the gateway knows to re-aggregate."""
        self.in_flight = 0
        self._cache: dict[ListKind, _CacheEntry] = {}
        self._up = anyio.Event()
        self._stopping = False
        self._scope: anyio.CancelScope | None = None
        self._idle = anyio.Event()
        self._idle.set()

    # ---- lifecycle -------------------------------------------------------------------------------

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run the supervisor and probe each session it establishes; returns after :meth:`stop`."""
        task_status.started()
        with anyio.CancelScope() as self._scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.connection.run)
                while not self._stopping:
                    await self._up.wait()
                    await self._probe_session()

    def _on_state(self, up: bool) -> None:
        if up:
            self._up.set()
            return
        self._up = anyio.Event()
        self.health.connected = False
        for entry in self._cache.values():  # kept for listing and routing until it is unhealthy
            entry.expires = float("-inf")

    async def _probe_session(self) -> None:
        """Probe the new session (:meth:`_probe`) and, on a 2026-07-28 backend, listen for its changes."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._listen_for_changes)
            await self._probe()
            tg.cancel_scope.cancel()

    async def _listen_for_changes(self) -> None:
        """Hold the session's change feed: a 2026-07-28 backend announces list changes and resource updates
        only on a ``subscriptions/listen`` stream (one per session, reopened when the subscribed URIs
        change); a session-era backend sends them as notifications (:meth:`_on_message`) once its
        resources are subscribed again on the new session. Without a feed, lists refresh at each probe."""
        try:
            session = await self.connection.wait_ready(self.operational.timeouts.connect)
            info = self.connection.info
            if info is None:
                return
            if not info.modern:
                for uri in sorted(self.subscriptions):
                    await self._subscribe_on_session(uri)
                return
            caps = info.capabilities
            lists = any(c is not None and c.list_changed for c in (caps.tools, caps.prompts, caps.resources))
            while True:
                self._relisten = anyio.Event()
                if not lists and not self.subscriptions:
                    await self._relisten.wait()
                    continue
                ended = False
                with anyio.CancelScope() as scope:
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(self._cancel_on_relisten, scope)
                        await self._follow(session, caps)
                        ended = True  # the backend ended the stream: no feed until the next session
                        scope.cancel()
                if ended:
                    return
        except Exception as exc:  # boundary: without the stream, lists still refresh at each probe
            logger.info("backend %s: no change stream (%s)", self.name, describe(exc))

    async def _cancel_on_relisten(self, scope: anyio.CancelScope) -> None:
        await self._relisten.wait()
        scope.cancel()

    async def _follow(self, session: ClientSession, caps: types.ServerCapabilities) -> None:
        async with listen(
            session,
            tools_list_changed=bool(caps.tools and caps.tools.list_changed),
            prompts_list_changed=bool(caps.prompts and caps.prompts.list_changed),
            resources_list_changed=bool(caps.resources and caps.resources.list_changed),
            resource_subscriptions=sorted(self.subscriptions),
        ) as subscription:
            async for event in subscription:
                if isinstance(event, ResourceUpdated):
                    self.on_resource_updated(event.uri)
                    continue
                kind = _EVENT_KIND.get(type(event))
                if kind is not None:
                    self.invalidate(kind)
                    if kind == "resources":
                        self.invalidate("resource_templates")

    async def subscribe(self, uri: str, *, on: bool = True) -> None:
        """Pass a front subscription to ``uri`` on to the backend (now and on every new session), or with
        ``on=False`` withdraw it."""
        if (uri in self.subscriptions) == on:
            return
        if on:
            self.subscriptions.add(uri)
        else:
            self.subscriptions.discard(uri)
        info = self.connection.info
        if info is not None and info.modern:
            self._relisten.set()
        elif self.connection.ready:
            await self._subscribe_on_session(uri, "resources/subscribe" if on else "resources/unsubscribe")

    async def _subscribe_on_session(self, uri: str, method: str = "resources/subscribe") -> None:
        try:
            await self.call(method, {"uri": uri}, types.EmptyResult)
        except (BackendUnavailableError, MCPError) as exc:  # the next session subscribes again
            logger.warning("backend %s: %s %s failed: %s", self.name, method, uri, exc)

    async def _probe(self) -> None:
        """The first ``tools/list`` makes the backend routable; then one probe per interval."""
        failure = self.operational.failure_handling
        try:
            await self._wait_for_trial()
            with anyio.fail_after(self.operational.timeouts.connect):
                await self._refresh("tools")
            info = self.connection.info
            self.health.connected = True
            self.health.protocol_version = info.protocol_version if info is not None else None
            self._record_ok()
            logger.info("backend %s ready (protocol %s)", self.name, self.health.protocol_version)
            while not self._stopping and self.connection.ready:
                await anyio.sleep(failure.health_check_interval)
                if self._stopping or not self.connection.ready:
                    break
                await self._wait_for_trial()
                with anyio.fail_after(failure.health_check_timeout):
                    await self._refresh("tools")
                self._record_ok()
        except Exception as exc:  # boundary: any transport/protocol failure of this backend
            self._fail(exc)
        if self._stopping:
            await self._idle.wait()  # keep the session for the calls in flight; stop() bounds the wait

    async def _wait_for_trial(self) -> None:
        """While the circuit is open, the new session waits for the half-open trial (this probe)."""
        breaker = self.health.breaker
        while not breaker.allow():  # noqa: ASYNC110 (waits out a duration, not for an event)
            await anyio.sleep(min(max(breaker.retry_in(), 0.05), 1.0))  # re-reads the (injected) clock

    async def stop(self, *, drain_timeout: float) -> None:
        """Stop after in-flight calls finish (at most ``drain_timeout`` seconds), then disconnect."""
        self._stopping = True
        self.connection.stop()
        with anyio.move_on_after(drain_timeout):
            await self._idle.wait()
        if self._scope is not None:
            self._scope.cancel()

    def _record_ok(self) -> None:
        before = self.health.breaker.state
        self.health.record_success()
        self._after_record(before)

    def _record_error(self, message: str) -> None:
        if self._stopping:
            return
        before = self.health.breaker.state
        self.health.record_failure(message)
        logger.warning(
            "backend %s failed: %s (%d consecutive failures)",
            self.name,
            message,
            self.health.consecutive_failures,
        )
        self._after_record(before)

    def _after_record(self, before: str) -> None:
        """Log circuit transitions; withdraw or restore the backend's tools when ``listed`` flips."""
        after = self.health.breaker.state
        if after != before and self.health.breaker.config.enabled:
            logger.warning("backend %s circuit %s -> %s", self.name, before, after)
        listed = self.health.listed
        if listed != self.listed:
            self.listed = listed
            self.generation += 1
            self.on_lists_changed(self.name)

    def _fail(self, exc: BaseException, *, keep_connection: bool = False) -> None:
        message = describe(exc)
        self._record_error(message)
        if not keep_connection:
            self._on_state(False)
            self.connection.reconnect(message)

    async def _on_message(self, message: IncomingMessage) -> None:
        """Backend notifications: a list_changed drops that list from the cache; a resource update goes
        to the front's subscribers."""
        if isinstance(message, types.ResourceUpdatedNotification):
            self.on_resource_updated(str(message.params.uri))
        kind = _NOTIFICATION_KIND.get(type(message))
        if kind is not None:
            self.invalidate(kind)
        await anyio.lowlevel.checkpoint()

    # ---- lists -----------------------------------------------------------------------------------

    def invalidate(self, kind: ListKind) -> None:
        if self._cache.pop(kind, None) is not None:
            self.generation += 1
            self.on_lists_changed(self.name)

    def cached(self) -> BackendCapabilities:
        """The lists last fetched (possibly stale or partial; kept across a disconnect)."""
        cache = self._cache
        return BackendCapabilities(**{kind: cache[kind].items if kind in cache else [] for kind in _LISTS})

    def is_fresh(self, kind: ListKind) -> bool:
        entry = self._cache.get(kind)
        return entry is not None and entry.expires > self.clock()

    async def ensure_fresh(self, kinds: tuple[ListKind, ...]) -> None:
        """Refetch the stale kinds (within the list timeout); errors count against the breaker."""
        stale = [k for k in kinds if not self.is_fresh(k)]
        if not self.health.connected or not stale:
            return
        try:
            with anyio.fail_after(self.operational.timeouts.list_for(self.name)):
                for kind in stale:
                    await self._refresh(kind)
        except Exception as exc:  # boundary: keep serving the other backends
            self._fail(exc)

    async def _refresh(self, kind: ListKind) -> None:
        info = self.connection.info
        caps = info.capabilities if info is not None else types.ServerCapabilities()
        supported = caps.tools if kind == "tools" else caps.prompts if kind == "prompts" else caps.resources
        items, ttl_ms = await self._fetch_all(kind) if supported is not None else ([], None)
        ttl = ttl_ms / 1000.0 if ttl_ms is not None else self.operational.default_list_ttl
        old = self._cache.get(kind)
        self._cache[kind] = _CacheEntry(items, self.clock() + ttl)
        if kind == "tools":
            self.health.tool_count = len(items)
        if old is None or old.items != items:
            self.generation += 1
            self.on_lists_changed(self.name)

    async def _fetch_all(self, kind: ListKind) -> tuple[list[Any], int | None]:
        """Every page of one list kind, and the smallest ttlMs the backend gave (None = none given)."""
        method, result_type = _LISTS[kind]
        items: list[Any] = []
        ttl: int | None = None
        cursor: str | None = None
        for _ in range(100):  # a paginator that never ends cannot hang the gateway
            result: Any = await self.request(method, {"cursor": cursor} if cursor else None, result_type)
            items += getattr(result, kind)
            page_ttl = getattr(result, "ttl_ms", None)
            if page_ttl is not None:
                ttl = page_ttl if ttl is None else min(ttl, page_ttl)
            cursor = result.next_cursor
            if cursor is None:
                break
        return items, ttl

    async def request(
        self,
        method: str,
        params: dict[str, Any] | None,
        result_type: type[ResultT],
        progress: ProgressFnT | None = None,
    ) -> ResultT:
        """One request on the current session, its result validated into ``result_type``."""
        return result_type.model_validate(await self._send(method, params, progress))

    async def _send(
        self, method: str, params: dict[str, Any] | None, progress: ProgressFnT | None = None
    ) -> dict[str, Any]:
        """The raw result, on the session's raw leg when it has one and no progress is relayed."""
        connection = self.connection
        if progress is None and connection.raw_ready:
            return await connection.forward_raw(method, params)
        return await connection.forward(method, params, progress=progress)

    # ---- calls -----------------------------------------------------------------------------------

    async def call(
        self,
        method: str,
        params: dict[str, Any],
        result_type: type[ResultT],
        progress: ProgressFnT | None = None,
    ) -> ResultT:
        """:meth:`request` with this backend's call timeout and the breaker."""
        return result_type.model_validate(await self.call_raw(method, params, progress))

    async def call_raw(
        self, method: str, params: dict[str, Any], progress: ProgressFnT | None = None
    ) -> dict[str, Any]:
        """:meth:`call`'s raw result (the front's fast path shapes it itself)."""
        if not self.listed or not self.health.breaker.allow():
            raise CircuitOpenError(self.refusal())
        if not self.health.connected:
            raise BackendUnavailableError(
                f"backend {self.name!r} is not connected"
                + (f": {self.health.last_error}" if self.health.last_error else "")
            )
        self.in_flight += 1
        self._idle = anyio.Event() if self.in_flight == 1 else self._idle
        timeout = self.operational.timeouts.call_for(self.name)
        try:
            with anyio.fail_after(timeout):
                result = await self._send(method, params, progress)
        except TimeoutError as exc:
            self._fail(exc, keep_connection=True)
            raise BackendUnavailableError(
                f"backend {self.name!r} did not answer within {timeout:g}s"
            ) from exc
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, httpx2.TransportError, OSError) as exc:
            self._fail(exc)
            raise BackendUnavailableError(f"backend {self.name!r} failed: {describe(exc)}") from exc
        except MCPError as exc:
            if exc.code != BACKEND_UNAVAILABLE:
                self._record_call_ok()
                raise  # the backend's own answer
            self._fail(exc)
            raise BackendUnavailableError(f"backend {self.name!r} failed: {exc.error.message}") from exc
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self._idle.set()
        self._record_call_ok()
        return result

    def _record_call_ok(self) -> None:
        # The hot path: a healthy backend's answer costs one integer check.
        if self.health.breaker.consecutive_failures or self.health.breaker.opened_at is not None:
            self._record_ok()

    def refusal(self) -> str:
        """Why calls to this backend are refused at once (for :class:`CircuitOpenError`)."""
        health = self.health
        breaker = health.breaker
        why = f"{health.consecutive_failures} consecutive failures"
        if breaker.config.enabled and breaker.opened_at is not None:
            why = f"circuit {breaker.state} after {why}; next trial in {breaker.retry_in():.0f}s"
        last = f"; last error: {health.last_error}" if health.last_error else ""
        return f"backend {self.name!r} is unavailable ({why}){last}"
