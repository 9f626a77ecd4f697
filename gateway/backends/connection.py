"""One long-lived MCP session to a backend, supervised: connect, era detection, readiness, reconnect.

The I/O seam is a :data:`TransportFactory` yielding the SDK's ``(read_stream, write_stream)`` (plus a
:class:`gateway.backends.stdio.LineWire` on stdio, or a :class:`gateway.backends.modern_http.HttpLeg` on
streamable HTTP). The SDK ``ClientSession`` on it remaps request ids,
routes progress and cancels; :class:`BackendConnection` fails in-flight calls when the transport ends
and reconnects with backoff (docs/proxy.md, "Semantics"). :meth:`BackendConnection.forward_raw` is the
fast path's leg: raw frames on a session-era session (:class:`gateway.backends.raw_channel.RawChannel`),
or one POST per request to a 2026-07-28 HTTP backend when no client request is bridged
(:class:`gateway.backends.modern_http.ModernHttpChannel`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import anyio
import mcp_types as types
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.client.context import ClientRequestContext
from mcp.client.session import ClientSession, MessageHandlerFnT
from mcp.shared.dispatcher import ProgressFnT
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage
from pydantic import TypeAdapter

from gateway import sdk_private, tracing
from gateway.backends.modern_http import HttpLeg, ModernHttpChannel
from gateway.backends.raw_channel import RawChannel
from gateway.backends.stdio import LineWire

__all__ = [
    "BACKEND_UNAVAILABLE",
    "BackendConnection",
    "BackendHooks",
    "BackendInfo",
    "TransportFactory",
    "describe",
    "running",
]

logger = logging.getLogger("mcp_operator.backend")

BACKEND_UNAVAILABLE = -32001
"""JSON-RPC error code when the backend is down or not (yet) connected."""

Streams = tuple[Any, ...]
TransportFactory = Callable[[], contextlib.AbstractAsyncContextManager[Streams]]
"""Opens one connection to the backend: yields the SDK's ``(read_stream, write_stream)``, or
``(read_stream, write_stream, wire)`` with a :class:`gateway.backends.stdio.LineWire` for raw frames or a
:class:`gateway.backends.modern_http.HttpLeg` for raw 2026-07-28 requests."""

_RAW: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])
_CLIENT_INFO = types.Implementation(name="mcp-operator-proxy", version="0.1.0")
_LOST = "the backend connection was lost during the call"


@dataclass(frozen=True)
class BackendInfo:
    """What the backend told us when the session was established."""

    protocol_version: str
    modern: bool
    capabilities: types.ServerCapabilities
    server_info: types.Implementation | None
    instructions: str | None


@dataclass
class BackendHooks:
    """Callbacks into the front for what the backend initiates (set by the proxy)."""

    on_log: Callable[[types.LoggingMessageNotificationParams], Awaitable[None]] | None = None
    on_server_request: Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]] | None = None
    on_restart: Callable[[], None] | None = None
    on_state: Callable[[bool], None] | None = None
    on_error: Callable[[str], None] | None = None
    """A connection attempt or an established session failed (the one-line reason)."""
    on_message: MessageHandlerFnT | None = None
    """Every server notification (and transport-level exception) the SDK session surfaces."""


class BackendConnection:
    """Supervises one shared backend session; reconnects when it ends."""

    def __init__(
        self,
        transport: TransportFactory,
        *,
        description: str,
        hooks: BackendHooks | None = None,
        call_timeout: float | None = 300.0,
        connect_timeout: float = 30.0,
        bridge_client_requests: bool = True,
        session_era_first: bool | None = None,
    ) -> None:
        self.transport = transport
        self.description = description
        self.hooks = hooks or BackendHooks()
        self.call_timeout = call_timeout
        self.connect_timeout = connect_timeout
        self.bridge_client_requests = bridge_client_requests
        self.session_era_first = bridge_client_requests if session_era_first is None else session_era_first
        self.info: BackendInfo | None = None
        self.last_error: str = "not connected yet"
        self.restarts = 0
        self._session: ClientSession | None = None
        self._raw: RawChannel | ModernHttpChannel | None = None
        self._wire: LineWire | None = None
        self._http: HttpLeg | None = None
        self._ready = anyio.Event()
        self._stopping = False
        self._session_scope: anyio.CancelScope | None = None

    # -- state -------------------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._session is not None

    def readiness(self) -> tuple[bool, str]:
        """For ``/readyz``: ready only while a backend session is established."""
        if self._session is not None and self.info is not None:
            return True, f"backend {self.description} connected ({self.info.protocol_version})"
        return False, f"backend {self.description} unavailable: {self.last_error}"

    # -- supervision -------------------------------------------------------------------------------------

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Connect, serve until the transport ends, reconnect with backoff; until cancelled."""
        delay = 0.2
        started = False
        while not self._stopping:
            began = time.monotonic()
            try:
                await self._serve_once(task_status if not started else None)
                self.last_error = "the backend closed the connection"
            except Exception as exc:  # every failure of one connection leads to a reconnect
                self.last_error = describe(exc)
                logger.warning("backend %s failed: %s", self.description, self.last_error)
                if self.hooks.on_error is not None and not self._stopping:
                    self.hooks.on_error(self.last_error)
            if not started:
                started = True
                with contextlib.suppress(RuntimeError):  # already started by _serve_once
                    task_status.started()
            self._set_down()
            if self._stopping:
                return
            self.restarts += 1
            if self.hooks.on_restart is not None:
                self.hooks.on_restart()
            if time.monotonic() - began > 30:
                delay = 0.2  # it ran fine for a while: restart promptly
            logger.info("reconnecting to backend %s in %.1fs", self.description, delay)
            await anyio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def _serve_once(self, task_status: anyio.abc.TaskStatus[None] | None) -> None:
        async with self.transport() as streams, anyio.create_task_group() as tg:
            self._session_scope = tg.cancel_scope
            read_stream, write_stream = streams[0], streams[1]
            extra = streams[2] if len(streams) > 2 else None
            self._wire = extra if isinstance(extra, LineWire) else None
            self._http = extra if isinstance(extra, HttpLeg) else None
            ended = anyio.Event()
            tap_send, tap_receive = anyio.create_memory_object_stream[SessionMessage | Exception](64)
            tg.start_soon(_pump, read_stream, tap_send, ended, self._set_down, self._offer_raw)
            session = ClientSession(
                tap_receive,
                write_stream,
                client_info=_CLIENT_INFO,
                logging_callback=self._on_log,
                message_handler=self.hooks.on_message,
                **self._bridging_callbacks(),
            )
            async with session:
                with anyio.fail_after(self.connect_timeout):
                    await self._negotiate(session)
                self._set_up(session, write_stream)
                if task_status is not None:
                    task_status.started()
                await ended.wait()
            tg.cancel_scope.cancel()

    async def _negotiate(self, session: ClientSession) -> None:
        """Pick the backend's era from what it supports.

        With ``session_era_first`` (the default with bridging on), a backend that still speaks the
        2025-11-25 session era is driven in it: that is the era where its server-to-client requests
        (sampling, elicitation, roots) and its session log level reach our front clients, and the only one
        a legacy SSE endpoint speaks. A backend refusing ``initialize`` (2026-07-28 only) is probed with
        ``server/discover``. Otherwise the newest era wins (``server/discover`` first).
        """
        if self.session_era_first:
            try:
                await session.initialize()
                return
            except MCPError as exc:
                logger.info(
                    "backend %s refused initialize (%s); probing server/discover", self.description, exc
                )
        await sdk_private.negotiate(session)

    def _bridging_callbacks(self) -> dict[str, Any]:
        if not self.bridge_client_requests:
            return {}

        async def sampling(_: ClientRequestContext, params: types.CreateMessageRequestParams) -> Any:
            return await self._bridge("sampling/createMessage", params, types.CreateMessageResult)

        async def elicitation(_: ClientRequestContext, params: types.ElicitRequestParams) -> Any:
            return await self._bridge("elicitation/create", params, types.ElicitResult)

        async def roots(_: ClientRequestContext) -> Any:
            return await self._bridge("roots/list", None, types.ListRootsResult)

        return {
            "sampling_callback": sampling,
            "elicitation_callback": elicitation,
            "list_roots_callback": roots,
        }

    async def _bridge(self, method: str, params: Any, result_type: type[Any]) -> Any:
        if self.hooks.on_server_request is None:
            return types.ErrorData(code=types.METHOD_NOT_FOUND, message=f"{method} is not bridged")
        data = params.model_dump(by_alias=True, mode="json", exclude_none=True) if params is not None else {}
        try:
            raw = await self.hooks.on_server_request(method, data)
        except MCPError as exc:
            return exc.error
        return result_type.model_validate(raw)

    async def _on_log(self, params: types.LoggingMessageNotificationParams) -> None:
        if self.hooks.on_log is not None:
            await self.hooks.on_log(params)

    def _offer_raw(self, item: object) -> bool:
        raw = self._raw
        return isinstance(raw, RawChannel) and raw.deliver(item)

    def _set_up(self, session: ClientSession, write_stream: Any) -> None:
        caps = session.server_capabilities or types.ServerCapabilities()
        version = session.protocol_version or "unknown"
        self.info = BackendInfo(
            protocol_version=version,
            modern=session.discover_result is not None,
            capabilities=caps,
            server_info=session.server_info,
            instructions=session.instructions,
        )
        self._session = session
        if self.info.modern:
            self._raw = self._modern_channel(version)
        else:
            self._raw = raw = RawChannel(
                write_stream,
                protocol_version=version,
                lost_code=BACKEND_UNAVAILABLE,
                lost_message=_LOST,
                wire=self._wire,
            )
            if self._wire is not None:
                self._wire.sink = raw.take
        self.last_error = ""
        self._ready.set()
        logger.info("backend %s connected (protocol %s)", self.description, version)
        if self.hooks.on_state is not None:
            self.hooks.on_state(True)

    def _modern_channel(self, version: str) -> ModernHttpChannel | None:
        """The raw leg of a 2026-07-28 HTTP session, declaring what the SDK session declares: it can only
        when no client request is bridged (the session then declares no client capability)."""
        if self._http is None or self.bridge_client_requests:
            return None
        info = _CLIENT_INFO.model_dump(by_alias=True, mode="json", exclude_none=True)
        return ModernHttpChannel(self._http, version, info, {})

    def _set_down(self) -> None:
        was_up = self._session is not None
        self._session = None
        if self._wire is not None:
            self._wire.sink = None
            self._wire = None
        self._http = None
        if isinstance(self._raw, RawChannel):
            self._raw.close()
        self._raw = None
        self._ready = anyio.Event()
        if was_up and self.hooks.on_state is not None:
            self.hooks.on_state(False)

    @property
    def raw_ready(self) -> bool:
        """Whether :meth:`forward_raw` can send now (a session with a raw leg is up)."""
        return self._raw is not None

    async def forward_raw(self, method: str, params: dict[str, Any] | None) -> dict[str, Any]:
        """Send one request on the raw leg and return its raw result (raises ``MCPError``)."""
        raw = self._raw
        if raw is None:
            raise MCPError(code=BACKEND_UNAVAILABLE, message=f"backend unavailable: {self.last_error}")
        try:
            if tracing.enabled:
                with tracing.backend_span(self.description, method):
                    traced = tracing.with_trace_meta(params)
                    result = await raw.request(method, traced, limit=self.call_timeout)
            else:
                result = await raw.request(method, params, limit=self.call_timeout)
        except MCPError as exc:
            if exc.code == types.CONNECTION_CLOSED:  # an HTTP answer stream that ended early
                raise MCPError(code=BACKEND_UNAVAILABLE, message=f"{_LOST}: {exc.error.message}") from exc
            raise
        self._learn(method, result)
        return result

    def _learn(self, method: str, result: dict[str, Any]) -> None:
        """A tool listing teaches the 2026-07-28 raw leg the tools' ``Mcp-Param-*`` headers."""
        if method == "tools/list" and isinstance(self._raw, ModernHttpChannel):
            self._raw.learn(result.get("tools"))

    def stop(self) -> None:
        self._stopping = True

    def reconnect(self, reason: str) -> None:
        """Drop the current session (e.g. a failed health probe); the supervisor reconnects with backoff."""
        scope = self._session_scope
        if scope is not None and self._session is not None:
            self.last_error = reason
            scope.cancel()

    # -- calls -------------------------------------------------------------------------------------------

    async def wait_ready(self, limit: float) -> ClientSession:
        """The current session, waiting up to ``limit`` seconds for a (re)connect."""
        if self._session is not None:
            return self._session  # the hot path: no cancel scope per call
        with anyio.move_on_after(limit):
            while self._session is None:
                await self._ready.wait()
        if self._session is None:
            raise MCPError(code=BACKEND_UNAVAILABLE, message=f"backend unavailable: {self.last_error}")
        return self._session

    async def forward(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        progress: ProgressFnT | None = None,
    ) -> dict[str, Any]:
        """Send one request through the SDK session and return its raw result (raises ``MCPError``)."""
        if tracing.enabled:
            with tracing.backend_span(self.description, method):
                result = await self._forward(method, tracing.with_trace_meta(params), progress)
        else:
            result = await self._forward(method, params, progress)
        self._learn(method, result)
        return result

    async def _forward(
        self, method: str, params: dict[str, Any] | None, progress: ProgressFnT | None
    ) -> dict[str, Any]:
        session = await self.wait_ready(min(self.connect_timeout, self.call_timeout or math.inf))
        payload: dict[str, Any] = {"method": method}
        if params is not None:
            payload["params"] = params
        request = types.client_request_adapter.validate_python(payload)
        try:
            return await session.send_request(  # type: ignore[type-var]
                request, _RAW, request_read_timeout_seconds=self.call_timeout, progress_callback=progress
            )
        except MCPError as exc:
            if exc.code == types.CONNECTION_CLOSED:
                raise MCPError(code=BACKEND_UNAVAILABLE, message=_LOST) from exc
            raise


def describe(exc: BaseException) -> str:
    """A one-line error for status and logs: ``Type: message`` of the first leaf of (nested) exception
    groups, what actually went wrong (just the type when there is no message)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text and text != type(exc).__name__ else type(exc).__name__


async def _pump(
    source: MemoryObjectReceiveStream[Any],
    sink: MemoryObjectSendStream[SessionMessage | Exception],
    ended: anyio.Event,
    on_end: Callable[[], None],
    offer: Callable[[object], bool],
) -> None:
    """Copy the transport's read stream to the session; flag ``ended`` when the transport stops.

    ``offer`` sees every message first and keeps the raw-frame responses
    (:mod:`gateway.backends.raw_channel`).
    ``on_end`` runs before the session learns the stream ended, so ``/readyz`` already says 503 when the
    in-flight calls fail.
    """
    try:
        async for item in source:
            if not offer(item):  # a fast-path response goes straight to its caller
                await sink.send(item)
    except (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream):
        pass
    finally:
        on_end()
        sink.close()
        ended.set()


class Supervised(Protocol):
    """A supervisor task with a stop switch (:class:`BackendConnection`, a per-caller pool)."""

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = ...) -> None: ...

    def stop(self) -> None: ...


SupervisedT = TypeVar("SupervisedT", bound=Supervised)


@contextlib.asynccontextmanager
async def running(connection: SupervisedT) -> AsyncIterator[SupervisedT]:
    """Run the supervisor for the duration of the block (waits for its first attempt)."""
    async with anyio.create_task_group() as tg:
        await tg.start(connection.run)
        try:
            yield connection
        finally:
            connection.stop()
            tg.cancel_scope.cancel()
