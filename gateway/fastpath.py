"""The front's fast path: stateless 2026-07-28 requests answered without the SDK's per-request server.

The SDK serves a 2026-07-28 POST with a fresh ``Connection``, a ``ServerRunner``, a dispatch context, a
task group with a disconnect watcher and a memory stream for SSE, typed request and result models, and
then the proxy's own SDK client session forwards it with another round of the same. For the requests
that need none of that, :class:`FastPath` parses the body once, runs the SDK's own validation ladders
(pure functions), hands ``(method, params)`` to a :class:`FastHandler` (the proxy: filter / rename /
deny, metrics, audit, one raw frame on the shared backend session), shapes the result exactly as the
SDK's server does (cache hints, per-version result sieve, ``resultType``, the ``serverInfo`` stamp) and
answers ``application/json``.

When it applies (all of these): a ``POST`` with an ``MCP-Protocol-Version`` header naming a 2026-07-28
era version and no ``Mcp-Session-Id``; an ``Accept`` the SDK path accepts; a body within the size limit
that is ONE JSON-RPC request (not a notification or batch) for one of :data:`FAST_METHODS`; no
``_meta.progressToken`` and no per-request log level (those need notifications on an SSE stream); every
SDK ladder passes (envelope, routing headers, ``Mcp-Param-*`` headers, per-version params surface); and
the handler accepts it (:meth:`FastHandler.can_serve`: for the proxy, a session-era backend session is
up and the tool is not hidden).

Everything else falls back to the SDK path with the already-read body replayed, so every rejection,
notification, session-era request and edge case keeps the SDK's exact answer. The fast path sits where
the SDK's streamable-HTTP handler sits: inside the Host / Origin guard and the inbound OIDC middleware.
If the client disconnects, the handler is cancelled (the proxy then sends the backend
``notifications/cancelled``). ``mcp_proxy_fast_path_requests_total{route="fast"|"sdk"}`` counts which
path served each ``/mcp`` request.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Protocol

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
from mcp_types import methods as surface
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel, ValidationError
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["FAST_METHODS", "FastHandler", "FastPath"]

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
_JSON_HEADERS = [(b"content-type", b"application/json")]


class FastHandler(Protocol):
    """What the fast path forwards to (the proxy's :class:`gateway.proxy.ProxyServer`)."""

    def can_serve(self, method: str, params: Mapping[str, Any]) -> bool:
        """Cheap check before the request is committed to the fast path (False = SDK path)."""
        ...

    async def serve(self, method: str, params: dict[str, Any], scope: Scope) -> dict[str, Any]:
        """The raw result for ``(method, params)``; raises ``MCPError`` for a JSON-RPC error."""
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
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.fallback = fallback
        self.handler = handler
        self.server = server
        self.max_body_bytes = max_body_bytes
        counter = Counter(
            "mcp_proxy_fast_path_requests",
            "Requests on /mcp by the path that served them: fast (direct forward) or sdk (the SDK's server).",
            ["route"],
            registry=registry,
        )
        self.fast = counter.labels("fast")
        self.sdk = counter.labels("sdk")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not self._candidate(scope):
            self.sdk.inc()
            await self.fallback(scope, receive, send)
            return
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_body_bytes:
                self.sdk.inc()
                await Response("Request body too large", status_code=413)(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        decided = self._decide(scope, messages)
        if decided is None:
            self.sdk.inc()
            await self.fallback(scope, _replay(messages, receive), send)
            return
        self.fast.inc()
        request_id, method, params, version = decided
        await self._answer(
            scope, receive, send, request_id=request_id, method=method, params=params, version=version
        )

    def _candidate(self, scope: Scope) -> bool:
        """From the headers alone: a 2026-07-28 era POST the SDK would not refuse for its Accept or size."""
        version = accept = None
        for key, value in scope["headers"]:
            if key == b"mcp-protocol-version":
                if version is not None:
                    return False  # duplicated: the SDK's rejection
                version = value
            elif key == b"accept":
                accept = value
            elif key == b"mcp-session-id":
                return False
            elif key == b"content-length":
                try:
                    if int(value) > self.max_body_bytes:
                        return False  # the SDK answers 413 before reading it
                except ValueError:
                    return False
        if version is None or version in _HANDSHAKE_VERSIONS or accept is None:
            return False
        return _accepts(accept)

    def _decide(self, scope: Scope, messages: list[Message]) -> tuple[Any, str, dict[str, Any], str] | None:
        """``(id, method, params, version)`` when the fast path serves the body, else None."""
        if messages[-1]["type"] != "http.request" or messages[-1].get("more_body", False):
            return None
        body = b"".join(m.get("body", b"") for m in messages)
        try:
            decoded = json.loads(body)
        except (ValueError, RecursionError):
            return None
        if (
            not isinstance(decoded, dict)
            or not decoded.keys() <= _ENVELOPE
            or decoded.get("jsonrpc") != "2.0"
        ):
            return None
        request_id = decoded.get("id")
        method = decoded.get("method")
        params = decoded.get("params")
        if (
            not isinstance(request_id, str | int)
            or isinstance(request_id, bool)
            or method not in FAST_METHODS
            or not isinstance(params, dict)
        ):
            return None
        meta = params.get("_meta")
        if not isinstance(meta, dict) or any(key in meta for key in _NOTIFYING_META):
            return None
        assert isinstance(method, str)
        if not self.handler.can_serve(method, params):
            return None
        headers = Headers(scope=scope)
        if find_duplicated_routing_header(headers.items()) is not None:
            return None
        verdict = classify_inbound_request(decoded, headers=dict(headers.items()))
        if isinstance(verdict, InboundLadderRejection):
            return None
        if method == "tools/call" and self._param_headers_rejected(params, headers):
            return None
        try:
            surface.validate_client_request(method, verdict.protocol_version, params)
        except (KeyError, ValueError, ValidationError):
            return None
        return request_id, method, params, verdict.protocol_version

    def _param_headers_rejected(self, params: dict[str, Any], headers: Headers) -> bool:
        """The SDK's ``Mcp-Param-*`` check (from the server's schema lookup); True = let the SDK reject."""
        name, arguments = params.get("name"), params.get("arguments")
        if not isinstance(name, str) or (arguments is not None and not isinstance(arguments, Mapping)):
            return True
        has_param_headers = any(key.startswith("mcp-param-") for key in headers)
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

    async def _answer(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        request_id: Any,
        method: str,
        params: dict[str, Any],
        version: str,
    ) -> None:
        # The call runs in this task; a watcher cancels it if the client disconnects meanwhile (the proxy
        # then sends the backend ``notifications/cancelled``). One task per request, not two.
        task = asyncio.current_task()
        assert task is not None
        gone = False

        async def watch() -> None:
            nonlocal gone
            await _disconnected(receive)
            gone = True
            task.cancel()

        watcher = asyncio.get_running_loop().create_task(watch())
        try:
            status, body = await self._respond(request_id, method, params, version, scope)
        except asyncio.CancelledError:
            if gone and task.uncancel() == 0:
                return  # only our watcher cancelled it: the client is gone, nobody to answer
            raise
        finally:
            watcher.cancel()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _respond(
        self, request_id: Any, method: str, params: dict[str, Any], version: str, scope: Scope
    ) -> tuple[int, bytes]:
        try:
            result = self._shape(method, version, await self.handler.serve(method, params, scope))
        except Exception as exc:
            error = modern_error_data(exc)
            reply = types.JSONRPCError(jsonrpc="2.0", id=request_id, error=error)
            data = reply.model_dump(mode="json", by_alias=True, exclude_none=True)
            return ERROR_CODE_HTTP_STATUS.get(error.code, 200), _dumps(data)
        return 200, _dumps({"jsonrpc": "2.0", "id": request_id, "result": result})

    def _shape(self, method: str, version: str, raw: dict[str, Any]) -> dict[str, Any]:
        """What the SDK path does to a backend result: the proxy validates it into the method's result
        model, the SDK's server applies cache hints, the per-version sieve, ``resultType`` and the
        ``serverInfo`` stamp."""
        model = FAST_METHODS[method].model_validate(raw)
        hint = self.server.cache_hints.get(method)
        if hint is not None and isinstance(model, types.CacheableResult):
            model = apply_cache_hint(model, hint)
        raw = model.model_dump(by_alias=True, mode="json", exclude_none=True)
        result_type = raw.get("resultType")
        if not isinstance(result_type, str) or result_type in types.CORE_RESULT_TYPES:
            try:
                raw = surface.serialize_server_result(method, version, raw)
            except ValidationError:
                invalid = "Handler returned an invalid result"
                raise MCPError(code=types.INTERNAL_ERROR, message=invalid) from None
        if raw.get("resultType") is None:
            raw["resultType"] = "complete"
        meta = raw.get("_meta")
        if meta is None:
            raw["_meta"] = {types.SERVER_INFO_META_KEY: self.server.server_info_stamp}
        elif isinstance(meta, dict) and meta.get(types.SERVER_INFO_META_KEY) is None:
            raw["_meta"] = {**meta, types.SERVER_INFO_META_KEY: self.server.server_info_stamp}
        return raw


def _dumps(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


async def _disconnected(receive: Receive) -> None:
    """Returns when the client disconnects (nothing else arrives once the body is read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that yields the already-read messages first, then the real ones."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
