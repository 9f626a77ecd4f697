"""The front's fast path: plain ``/mcp`` requests answered without the SDK's per-request server.

When it applies, what it does and what falls back: docs/proxy.md, "The fast path". :class:`FastPath`
parses the body once, runs the SDK's own validation ladders (pure functions), hands ``(method, params)``
to a :class:`FastHandler` (the proxy's server, or the gateway's :mod:`gateway.vmcp.fast`) and shapes the
result as the SDK's server does; what it declines
goes to the SDK path with the body replayed, so every rejection keeps the SDK's exact answer.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol, TypeVar

import mcp_types as types
from mcp.server.caching import apply_cache_hint
from mcp.server.lowlevel import Server
from mcp.server.runner import modern_error_data
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import (
    ERROR_CODE_HTTP_STATUS,
    InboundLadderRejection,
    classify_inbound_request,
    find_duplicated_routing_header,
    validate_mcp_param_headers,
)
from mcp.shared.jsonrpc_dispatcher import handler_exception_to_error_data
from mcp_types import ErrorData
from mcp_types import methods as surface
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel, ValidationError
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.authz.enforce import REQUEST_ID
from gateway.fastpath_reply import (
    Call,
    SessionReply,
    dumps,
    encode_response,
    replay,
    send_json,
    session_header,
    watch,
)
from gateway.sdk_private import SessionLease, SessionTable

__all__ = ["FAST_METHODS", "PING_SECONDS", "CachedResult", "FastHandler", "FastPath", "Notify"]

logger = logging.getLogger("mcp_operator.proxy")
DecidedT = TypeVar("DecidedT")

FAST_METHODS: Mapping[str, type[BaseModel]] = MappingProxyType(
    {
        "tools/call": types.CallToolResult,
        "tools/list": types.ListToolsResult,
        "resources/list": types.ListResourcesResult,
        "resources/templates/list": types.ListResourceTemplatesResult,
        "resources/read": types.ReadResourceResult,
        "prompts/list": types.ListPromptsResult,
        "prompts/get": types.GetPromptResult,
        "completion/complete": types.CompleteResult,
    }
)
"""Methods the fast path may serve (plain request / response, no server-to-client traffic), with the
result model the SDK path validates the backend's answer into."""

_HANDSHAKE_VERSIONS = frozenset(v.encode("latin-1") for v in HANDSHAKE_PROTOCOL_VERSIONS)
_NOTIFYING_META = ("progressToken", types.LOG_LEVEL_META_KEY)
_ENVELOPE = frozenset({"jsonrpc", "id", "method", "params"})
_MODERN = ""
""":meth:`FastPath._candidate`'s answer for a 2026-07-28 request (a session-era one gets its session id)."""
PING_SECONDS = 15.0
"""A session-era answer still pending after this long turns into an SSE stream with a comment line this
often (what the SDK's SSE responses send), so idle-timeout proxies in between keep the connection."""

Notify = Callable[[dict[str, Any]], Awaitable[None]]
"""Sends one JSON-RPC notification on the front request's own response (session era)."""

_ENCODED_ENTRIES = 256
"""At most this many encoded :class:`CachedResult` results are kept (then they are all dropped)."""


@dataclass(frozen=True, slots=True)
class CachedResult:
    """A raw result the handler serves unchanged to many requests (the gateway's merged lists): built,
    shaped and encoded once per ``(key, method, protocol version)``, then answered as stored bytes.
    ``key`` must change whenever what ``build`` returns does."""

    key: Hashable
    build: Callable[[], dict[str, Any]]


class FastHandler(Protocol):
    """What the fast path forwards to (the proxy's :class:`gateway.proxy.ProxyServer`, the gateway's
    :class:`gateway.vmcp.fast.GatewayFastHandler`)."""

    def can_serve(self, method: str, params: Mapping[str, Any]) -> bool:
        """Cheap check before the request is committed to the fast path (False = SDK path)."""
        ...

    async def serve(
        self, method: str, params: dict[str, Any], scope: Scope, notify: Notify | None = None
    ) -> dict[str, Any] | CachedResult:
        """The raw result for ``(method, params)``; raises ``MCPError`` for a JSON-RPC error. ``notify``
        (session era only) carries notifications for this request, e.g. the backend's log messages."""
        ...


def _accepts(accept: bytes) -> bool:
    """What the SDK's SSE-mode check requires: both JSON and SSE acceptable (wildcards count)."""
    types_ = {part.split(b";")[0].strip().lower() for part in accept.split(b",")}
    if b"*/*" in types_:
        return True
    return bool(types_ & {b"application/json", b"application/*"}) and bool(
        types_ & {b"text/event-stream", b"text/*"}
    )


class FastPath:
    """ASGI app for ``/mcp``: serves what it can (see the module docstring), else calls ``fallback``."""

    def __init__(
        self,
        fallback: ASGIApp,
        handler: FastHandler,
        server: Server[Any],
        *,
        max_body_bytes: int,
        sessions: SessionTable | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.fallback = fallback
        self.handler = handler
        self.server = server
        counter = Counter(
            "mcp_proxy_fast_path_requests",
            "Requests on /mcp by the path that served them: fast (direct forward) or sdk (the SDK's server).",
            ["route"],
            registry=registry,
        )
        self.fast = counter.labels("fast")
        self.sdk = counter.labels("sdk")
        self.stamp = {types.SERVER_INFO_META_KEY: server.server_info_stamp}
        """The ``serverInfo`` stamp of 2026-07-28 results (the SDK deep-copies it per access; ours is only
        ever serialised, never changed)."""
        self.max_body_bytes = max_body_bytes
        self.sessions = sessions
        self.calls: dict[tuple[str, Any], Call] = {}
        """Session-era calls in flight by ``(session id, request id)``, for ``notifications/cancelled``."""
        self.encoded: dict[tuple[Hashable, str, str], bytes] = {}
        """Encoded :class:`CachedResult` results by ``(key, method, protocol version)``."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self._candidate(scope) if scope["type"] == "http" and scope["method"] == "POST" else None
        lease = None
        if route:
            lease = self.sessions.lease(route, scope) if self.sessions is not None else None
            if lease is None:
                route = None
        if route is None:
            self.sdk.inc()
            await self.fallback(scope, receive, send)
            return
        if lease is not None:
            with lease:
                await self._session_request(lease, scope, receive, send)
            return
        decided = await self._take(scope, receive, send, functools.partial(self._decide, scope))
        if decided is not None:
            await self._answer(scope, receive, send, decided)

    async def _take(
        self, scope: Scope, receive: Receive, send: Send, decide: Callable[[list[Message]], DecidedT | None]
    ) -> DecidedT | None:
        """Reads the body and asks ``decide``; what it declines (None) goes to the SDK path, body replayed."""
        messages = await self._read(scope, receive, send)
        if messages is None:
            return None
        decided = decide(messages)
        if decided is None:
            self.sdk.inc()
            await self.fallback(scope, replay(messages, receive), send)
            return None
        self.fast.inc()
        return decided

    async def _read(self, scope: Scope, receive: Receive, send: Send) -> list[Message] | None:
        """The request's body messages; None once a body over the limit got the SDK's 413."""
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return messages
            size += len(message.get("body", b""))
            if size > self.max_body_bytes:
                self.sdk.inc()
                await Response("Request body too large", status_code=413)(scope, receive, send)
                return None
            if not message.get("more_body", False):
                return messages

    def _candidate(self, scope: Scope) -> str | None:
        """From the headers alone: :data:`_MODERN` for a 2026-07-28 era POST, the session id for a
        2025-11-25 session's POST, None for what only the SDK serves (wrong Accept or Content-Type, too big,
        duplicated headers)."""
        version = accept = session = content_type = None
        for key, value in scope["headers"]:
            if key == b"mcp-protocol-version":
                if version is not None:
                    return None  # duplicated: the SDK's rejection
                version = value
            elif key == b"accept":
                accept = value
            elif key == b"mcp-session-id":
                if session is not None:
                    return None
                session = value
            elif key == b"content-type":
                content_type = value
            elif key == b"content-length":
                try:
                    if int(value) > self.max_body_bytes:
                        return None  # the SDK answers 413 before reading it
                except ValueError:
                    return None
        if accept is None or not _accepts(accept):
            return None
        if session is None:
            return _MODERN if version is not None and version not in _HANDSHAKE_VERSIONS else None
        if (version is not None and version not in _HANDSHAKE_VERSIONS) or content_type is None:
            return None
        if b"application/json" not in (p.strip() for p in content_type.split(b";")[0].split(b",")):
            return None
        return str(session.decode("latin-1"))

    def _decide(self, scope: Scope, messages: list[Message]) -> tuple[Any, str, dict[str, Any], str] | None:
        """``(id, method, params, version)`` when the fast path serves the body, else None."""
        decoded = _decode(messages)
        if decoded is None:
            return None
        headers = Headers(scope=scope)
        items = headers.items()  # decoded once: every check below reads them
        if find_duplicated_routing_header(items) is not None:
            return None
        verdict = classify_inbound_request(decoded, headers=dict(items))
        if isinstance(verdict, InboundLadderRejection):
            return None
        version = verdict.protocol_version
        request = self._request(decoded, version, meta_required=True)
        if request is None or (
            request[1] == "tools/call" and self._param_headers_rejected(request[2], headers, items)
        ):
            return None
        return (*request, version)

    def _request(
        self, decoded: dict[str, Any], version: str, *, meta_required: bool
    ) -> tuple[Any, str, dict[str, Any]] | None:
        """``(id, method, params)`` of a request for one of :data:`FAST_METHODS` that needs no notification
        stream, passes the SDK's params check for ``version`` and that the handler takes, else None."""
        request_id, method, params = decoded.get("id"), decoded.get("method"), decoded.get("params")
        params = {} if params is None else params
        if not _is_request_id(request_id) or method not in FAST_METHODS or not isinstance(params, dict):
            return None
        meta = params.get("_meta")
        if (meta is not None or meta_required) and (
            not isinstance(meta, dict) or any(key in meta for key in _NOTIFYING_META)
        ):
            return None
        assert isinstance(method, str)
        if not self.handler.can_serve(method, params):
            return None
        try:
            surface.validate_client_request(method, version, params)
        except (KeyError, ValueError, ValidationError):
            return None
        return request_id, method, params

    def _param_headers_rejected(
        self, params: dict[str, Any], headers: Headers, items: list[tuple[str, str]]
    ) -> bool:
        """The SDK's ``Mcp-Param-*`` check (from the server's schema lookup); True = let the SDK reject."""
        name, arguments = params.get("name"), params.get("arguments")
        if not isinstance(name, str) or (arguments is not None and not isinstance(arguments, Mapping)):
            return True
        has_param_headers = any(key.startswith("mcp-param-") for key, _ in items)
        if not arguments and not has_param_headers:
            return False
        lookup = self.server.get_tool_input_schema
        if lookup is None:
            return True  # the SDK would walk tools/list for the schema: leave it to the SDK
        try:
            schema = lookup(name)
        except Exception:
            return True
        if schema is None:
            return False  # no schema known: the SDK skips the check too
        return validate_mcp_param_headers(schema, arguments or {}, headers) is not None

    async def _session_request(self, lease: SessionLease, scope: Scope, receive: Receive, send: Send) -> None:
        """A 2025-11-25 session's POST: served here when :meth:`_decide_session` takes it, else by the SDK."""
        decided = await self._take(scope, receive, send, functools.partial(self._decide_session, lease))
        if decided is None:
            return
        if decided[1] == "notifications/cancelled":
            # One of this session's fast-path calls: cancel it (the proxy tells the backend), and answer
            # the notification as the SDK does.
            self.calls[(lease.session_id, decided[2]["requestId"])].cancel("cancelled")
            await send_json(send, 202, b"", session_header(lease))
            return
        await self._answer_session(lease, scope, receive, send, decided)

    def _decide_session(
        self, lease: SessionLease, messages: list[Message]
    ) -> tuple[Any, str, dict[str, Any]] | None:
        """``(id, method, params)`` of a session request the fast path serves (or of a cancellation of
        one of its calls in flight), else None."""
        decoded = _decode(messages)
        if decoded is None:
            return None
        if "id" in decoded:
            request = self._request(decoded, lease.protocol_version, meta_required=False)
            return None if request is None or (lease.session_id, request[0]) in self.calls else request
        method, params = decoded.get("method"), decoded.get("params")
        if method != "notifications/cancelled" or not isinstance(params, dict):
            return None
        target = params.get("requestId")
        if not _is_request_id(target) or (lease.session_id, target) not in self.calls:
            return None
        return None, method, params

    async def _answer_session(
        self, lease: SessionLease, scope: Scope, receive: Receive, send: Send, decided: tuple[Any, str, Any]
    ) -> None:
        # As on the 2026-07-28 path the call runs in this task with one watcher for a disconnect; a
        # ``notifications/cancelled`` for it cancels it too, and a timer turns a slow answer into an SSE
        # stream with keep-alive comments.
        request_id, method, params = decided
        call = Call.current()
        key = (lease.session_id, request_id)
        self.calls[key] = call
        reply = SessionReply(send, lease)
        loop = asyncio.get_running_loop()
        watcher = loop.create_task(watch(receive, call))
        timer = loop.call_later(PING_SECONDS, reply.keep_alive, PING_SECONDS)
        try:
            try:
                REQUEST_ID.set(request_id)
                served = await self.handler.serve(method, params, scope, reply.event)
                message = encode_response(request_id, self._result(method, lease.protocol_version, served))
            except asyncio.CancelledError:
                if call.reason is None or call.task.uncancel() > 0:
                    raise
                if call.reason == "cancelled":
                    await reply.finish(None)  # the SDK writes no answer to a cancelled request
                return  # otherwise the client is gone: nobody to answer
            except Exception as exc:
                error = handler_exception_to_error_data(exc)
                if error is None:
                    logger.exception("fast path: %s raised", method)
                    error = ErrorData(code=0, message=str(exc))  # what the SDK's session dispatcher sends
                reply_error = types.JSONRPCError(jsonrpc="2.0", id=request_id, error=error)
                message = dumps(reply_error.model_dump(mode="json", by_alias=True, exclude_none=True))
        finally:
            self.calls.pop(key, None)
            watcher.cancel()
            timer.cancel()
            reply.stop_keep_alive()
        await reply.finish(message)

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send, decided: tuple[Any, str, Any, str]
    ) -> None:
        # The call runs in this task; a watcher cancels it if the client disconnects meanwhile (the proxy
        # then sends the backend ``notifications/cancelled``). One task per request, not two.
        call = Call.current()
        watcher = asyncio.get_running_loop().create_task(watch(receive, call))
        try:
            status, body = await self._respond(*decided, scope)
        except asyncio.CancelledError:
            if call.reason is not None and call.task.uncancel() == 0:
                return  # only our watcher cancelled it: the client is gone, nobody to answer
            raise
        finally:
            watcher.cancel()
        await send_json(send, status, body)

    async def _respond(
        self, request_id: Any, method: str, params: dict[str, Any], version: str, scope: Scope
    ) -> tuple[int, bytes]:
        REQUEST_ID.set(request_id)
        try:
            result = self._result(method, version, await self.handler.serve(method, params, scope))
        except Exception as exc:
            error = modern_error_data(exc)
            reply = types.JSONRPCError(jsonrpc="2.0", id=request_id, error=error)
            data = reply.model_dump(mode="json", by_alias=True, exclude_none=True)
            return ERROR_CODE_HTTP_STATUS.get(error.code, 200), dumps(data)
        return 200, encode_response(request_id, result)

    def _result(self, method: str, version: str, served: dict[str, Any] | CachedResult) -> bytes:
        """The encoded result: shaped (:meth:`_shape`) per request, or once per key for a cached one."""
        if not isinstance(served, CachedResult):
            return dumps(self._shape(method, version, served))
        key = (served.key, method, version)
        encoded = self.encoded.get(key)
        if encoded is None:
            if len(self.encoded) >= _ENCODED_ENTRIES:
                self.encoded.clear()
            encoded = self.encoded[key] = dumps(self._shape(method, version, served.build()))
        return encoded

    def _shape(self, method: str, version: str, raw: dict[str, Any]) -> dict[str, Any]:
        """What the SDK path does to a backend result: the proxy validates it into the method's result
        model, the SDK's server applies cache hints, the per-version sieve and, on the 2026-07-28 era,
        ``resultType`` and the ``serverInfo`` stamp."""
        model = FAST_METHODS[method].model_validate(raw)
        hint = self.server.cache_hints.get(method)
        if hint is not None and isinstance(model, types.CacheableResult):
            model = apply_cache_hint(model, hint)
        raw = model.model_dump(by_alias=True, mode="json", exclude_none=True)
        result_type = raw.get("resultType")
        modern = version in MODERN_PROTOCOL_VERSIONS
        if not modern or not isinstance(result_type, str) or result_type in types.CORE_RESULT_TYPES:
            try:
                raw = surface.serialize_server_result(method, version, raw)
            except ValidationError:
                invalid = "Handler returned an invalid result"
                raise MCPError(code=types.INTERNAL_ERROR, message=invalid) from None
        if not modern:
            return raw  # handshake-era results carry neither resultType nor the serverInfo stamp
        if raw.get("resultType") is None:
            raw["resultType"] = "complete"
        meta = raw.get("_meta")
        if meta is None:
            raw["_meta"] = self.stamp
        elif isinstance(meta, dict) and meta.get(types.SERVER_INFO_META_KEY) is None:
            raw["_meta"] = {**meta, **self.stamp}
        return raw


def _decode(messages: list[Message]) -> dict[str, Any] | None:
    """The body as one JSON-RPC 2.0 object with only envelope keys, else None (batches, junk, extras)."""
    if messages[-1]["type"] != "http.request" or messages[-1].get("more_body", False):
        return None
    body = b"".join(m.get("body", b"") for m in messages)
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(decoded, dict) or not decoded.keys() <= _ENVELOPE or decoded.get("jsonrpc") != "2.0":
        return None
    return decoded


def _is_request_id(value: object) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool)
