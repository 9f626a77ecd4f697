"""Raw JSON-RPC requests on a backend transport, beside the SDK ``ClientSession`` that shares it.

The fast path's backend leg (docs/proxy.md): one frame per request with its own ``"fp-<n>"`` id (never
colliding with the session's integer ids) and a future resolved by the transport's reader, with no task
group, memory stream or typed model per call. Errors, the call timeout, cancellation and a lost
transport behave as in the SDK dispatcher. Session-era backends only (no per-request envelope).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Mapping
from typing import Any

import anyio
import mcp_types as types
import orjson
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import (
    MCP_NAME_HEADER,
    MCP_PROTOCOL_VERSION_HEADER,
    NAME_BEARING_METHODS,
    encode_header_value,
)
from mcp.shared.message import ClientMessageMetadata, SessionMessage

from gateway import tracing
from gateway.backends.stdio import LineWire

__all__ = ["RawChannel", "outcome"]

logger = logging.getLogger("mcp_operator.backend")

_CANCEL_WRITE_TIMEOUT = 2.0
_MALFORMED = "the backend sent a malformed JSON-RPC response"


class RawChannel:
    """Raw request / response matching on one backend connection (see the module docstring)."""

    def __init__(
        self,
        write_stream: Any,
        *,
        protocol_version: str,
        lost_message: str,
        lost_code: int,
        wire: LineWire | None = None,
    ) -> None:
        self._write_stream = write_stream
        self._wire = wire
        self._protocol_version = protocol_version
        self._lost = (lost_code, lost_message)
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._closed = False

    @property
    def pending(self) -> int:
        """Calls awaiting their response."""
        return len(self._pending)

    def deliver(self, message: object) -> bool:
        """Resolve the pending call a response belongs to; False when it is not ours (the session's)."""
        inner = message.message if isinstance(message, SessionMessage) else None
        if not isinstance(inner, types.JSONRPCResponse | types.JSONRPCError):
            return False
        request_id = inner.id
        if not isinstance(request_id, str):
            return False
        if isinstance(inner, types.JSONRPCResponse):
            return self._settle(request_id, inner.result)
        error = inner.error
        return self._settle(request_id, MCPError(code=error.code, message=error.message, data=error.data))

    def take(self, obj: dict[str, Any]) -> bool:
        """:meth:`deliver` for a decoded JSON line of a :class:`LineWire` (before any validation): True when
        it is the response to one of our calls (or a late one, dropped)."""
        request_id = obj.get("id")
        if (
            not isinstance(request_id, str)
            or not request_id.startswith("fp-")
            or "method" in obj
            or obj.get("jsonrpc") != "2.0"
        ):
            return False
        return self._settle(request_id, outcome(obj))

    def _settle(self, request_id: str, outcome: dict[str, Any] | MCPError) -> bool:
        """Resolve the call ``request_id`` with a result or an error; False when the id is not ours."""
        future = self._pending.pop(request_id, None)
        if future is None:
            return request_id.startswith("fp-")  # a late answer to a call already given up: drop it
        if not future.done():
            if isinstance(outcome, MCPError):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
        return True

    def close(self) -> None:
        """The transport ended: every pending call fails with the connection-lost error."""
        self._closed = True
        code, message = self._lost
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(MCPError(code=code, message=message))

    def _metadata(self, method: str, params: Mapping[str, Any] | None) -> ClientMessageMetadata:
        """The HTTP headers the SDK's handshake-era stamp adds (ignored by stdio and attach)."""
        headers = {MCP_PROTOCOL_VERSION_HEADER: self._protocol_version}
        key = NAME_BEARING_METHODS.get(method)
        if key is not None and params is not None and isinstance(name := params.get(key), str):
            headers[MCP_NAME_HEADER] = encode_header_value(name)
        if tracing.enabled:
            tracing.inject_headers(headers)
        return ClientMessageMetadata(headers=headers)

    async def request(
        self, method: str, params: dict[str, Any] | None, *, limit: float | None
    ) -> dict[str, Any]:
        """Send one request and return its raw result (raises ``MCPError``)."""
        if self._closed:
            code, message = self._lost
            raise MCPError(code=code, message=message)
        request_id = f"fp-{next(self._ids)}"
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._pending[request_id] = future
        timer: asyncio.TimerHandle | None = None
        written = False
        try:
            try:
                if self._wire is not None:
                    await self._wire.send_line(_line(request_id, method, params))
                else:
                    await self._write_stream.send(self._frame(request_id, method, params))
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                code, message = self._lost
                raise MCPError(code=code, message=message) from None
            written = True
            if limit is not None:
                timer = loop.call_later(limit, _expire, future, method)
            result = await future
        except MCPError as exc:
            if exc.code == types.REQUEST_TIMEOUT and written:
                await self._cancel(request_id, f"timed out after {limit}s")
            raise
        except asyncio.CancelledError:
            if written:
                await self._cancel(request_id, "caller cancelled")
            raise
        finally:
            self._pending.pop(request_id, None)
            if timer is not None:
                timer.cancel()
        return result

    def _frame(self, request_id: str, method: str, params: dict[str, Any] | None) -> SessionMessage:
        if params is None:
            frame = types.JSONRPCRequest(jsonrpc="2.0", id=request_id, method=method)
        else:
            frame = types.JSONRPCRequest(jsonrpc="2.0", id=request_id, method=method, params=params)
        return SessionMessage(frame, self._metadata(method, params))

    async def _cancel(self, request_id: str, reason: str) -> None:
        """The courtesy ``notifications/cancelled`` so the backend stops working on it."""
        notification = types.JSONRPCNotification(
            jsonrpc="2.0",
            method="notifications/cancelled",
            params={"requestId": request_id, "reason": reason},
        )
        try:
            if self._wire is not None:
                sending = self._wire.send_message(notification)
            else:
                sending = self._write_stream.send(SessionMessage(notification))
            await asyncio.wait_for(sending, _CANCEL_WRITE_TIMEOUT)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, TimeoutError):
            pass
        except Exception:  # the caller is gone either way; never mask its outcome
            logger.debug("courtesy cancel for %s not sent", request_id, exc_info=True)


def outcome(obj: dict[str, Any]) -> dict[str, Any] | MCPError:
    """The result or error a raw JSON-RPC response carries (-32603 when it is neither well-formed)."""
    if "error" in obj:
        error = obj["error"]
        code = error.get("code") if isinstance(error, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        if isinstance(code, int) and not isinstance(code, bool) and isinstance(message, str):
            return MCPError(code=code, message=message, data=error.get("data"))
        return MCPError(code=types.INTERNAL_ERROR, message=_MALFORMED)
    result = obj.get("result")
    return result if isinstance(result, dict) else MCPError(code=types.INTERNAL_ERROR, message=_MALFORMED)


def _line(request_id: str, method: str, params: dict[str, Any] | None) -> bytes:
    """One request as a JSON line, as the SDK's stdio transport would write it (NaN as null)."""
    envelope: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        envelope["params"] = params
    try:
        return orjson.dumps(envelope) + b"\n"
    except TypeError:  # an integer beyond 64 bits (which json.loads took from the client): pydantic writes it
        frame = types.JSONRPCRequest.model_validate(envelope)
        return frame.model_dump_json(by_alias=True, exclude_unset=True).encode() + b"\n"


def _expire(future: asyncio.Future[dict[str, Any]], method: str) -> None:
    if not future.done():
        future.set_exception(MCPError(code=types.REQUEST_TIMEOUT, message=f"Request {method!r} timed out"))
