"""Raw 2026-07-28 requests to an HTTP backend: one POST per request on the backend's pooled HTTP client.

The fast path's backend leg for a 2026-07-28 HTTP backend (docs/vmcp.md, "The fast path"): each request
is one self-contained POST, so the leg needs no session machinery at all. :class:`ModernHttpChannel`
writes the envelope the SDK's client stamps on every 2026-07-28 request (protocol version, client info
and capabilities in ``_meta``; ``Mcp-Protocol-Version``, ``Mcp-Method``, ``Mcp-Name`` and the tool's
``Mcp-Param-*`` headers), sends it on the same ``httpx2`` client (pool, credentials, no redirects) the
SDK session of the connection uses, and reads the answer as JSON or from an SSE stream. HTTP statuses,
202, redirects and a stream ending without an answer give the JSON-RPC errors the SDK's transport
synthesises for them, so a call answers the same on both legs. Cancelling the caller aborts the POST,
which is how the 2026-07-28 HTTP wire cancels a request.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx2
import mcp_types as types
import orjson
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import (
    MCP_METHOD_HEADER,
    MCP_NAME_HEADER,
    MCP_PROTOCOL_VERSION_HEADER,
    NAME_BEARING_METHODS,
    encode_header_value,
    find_invalid_x_mcp_header,
    mcp_param_headers,
    x_mcp_header_map,
)

from gateway import passthrough, tracing
from gateway.backends.h1 import H1Pool
from gateway.backends.raw_channel import outcome

__all__ = ["Answer", "HttpLeg", "ModernHttpChannel", "sse_data"]

_ACCEPT = "application/json, text/event-stream"
HeaderMap = dict[tuple[str, ...], str]


@dataclass
class HttpLeg:
    """What an HTTP transport lends the raw leg: its ``httpx2`` client (pool, credentials) and endpoint,
    and for a plain-HTTP endpoint the lighter :class:`gateway.backends.h1.H1Pool` with the credential
    headers to put on its requests."""

    client: httpx2.AsyncClient
    url: str
    direct: H1Pool | None = None
    credentials: Callable[[], Awaitable[dict[str, str]]] | None = None


@dataclass
class ModernHttpChannel:
    """Raw requests of one 2026-07-28 backend session (see the module docstring)."""

    leg: HttpLeg
    protocol_version: str
    client_info: dict[str, Any]
    capabilities: dict[str, Any]
    header_maps: dict[str, HeaderMap] = field(default_factory=dict)
    """``Mcp-Param-*`` maps by backend tool name, learnt from the backend's tool listings."""
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def learn(self, tools: object) -> None:
        """Record the ``x-mcp-header`` maps of a ``tools/list`` page (as the SDK's client does on listing)."""
        if not isinstance(tools, list):
            return
        for tool in tools:
            if not isinstance(tool, dict) or not isinstance(name := tool.get("name"), str):
                continue
            schema = tool.get("inputSchema")
            if find_invalid_x_mcp_header(schema) is None and (mapping := x_mcp_header_map(schema)):
                self.header_maps[name] = mapping
            else:
                self.header_maps.pop(name, None)

    async def request(
        self, method: str, params: dict[str, Any] | None, *, limit: float | None
    ) -> dict[str, Any]:
        """Send one request and return its raw result (raises ``MCPError``; transport errors propagate)."""
        request_id = f"fp-{next(self._ids)}"
        body, headers = self._envelope(request_id, method, params or {})
        try:
            async with asyncio.timeout(limit):
                return await self._exchange(request_id, body, headers)
        except TimeoutError:
            raise MCPError(code=types.REQUEST_TIMEOUT, message=f"Request {method!r} timed out") from None

    def _envelope(self, request_id: str, method: str, params: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        meta = params.get("_meta")
        meta = dict(meta) if isinstance(meta, dict) else {}
        meta[types.PROTOCOL_VERSION_META_KEY] = self.protocol_version
        meta[types.CLIENT_INFO_META_KEY] = self.client_info
        meta[types.CLIENT_CAPABILITIES_META_KEY] = self.capabilities
        headers = {
            "accept": _ACCEPT,
            "content-type": "application/json",
            MCP_PROTOCOL_VERSION_HEADER: self.protocol_version,
            MCP_METHOD_HEADER: method,
        }
        key = NAME_BEARING_METHODS.get(method)
        name = params.get(key) if key is not None else None
        if isinstance(name, str):
            headers[MCP_NAME_HEADER] = encode_header_value(name)
            if method == "tools/call" and (mapping := self.header_maps.get(name)) is not None:
                arguments = params.get("arguments")
                arguments = arguments if isinstance(arguments, Mapping) else {}
                headers.update(mcp_param_headers(mapping, arguments))
        if tracing.enabled:
            tracing.inject_headers(headers)
        if passthrough.enabled:
            passthrough.add_to(headers)
        envelope = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": {**params, "_meta": meta}}
        return orjson.dumps(envelope), headers

    async def _exchange(self, request_id: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
        leg = self.leg
        if leg.direct is None:
            request = leg.client.build_request("POST", leg.url, content=body, headers=headers)
            response = await leg.client.send(request, stream=True, follow_redirects=False)
            try:
                answer = Answer(
                    response.status_code, response.headers, response.aread, response.aiter_bytes()
                )
                return await answer.result(request_id)
            finally:
                await response.aclose()
        if leg.credentials is not None:
            credentials = await leg.credentials()
            if passthrough.enabled:
                passthrough.yield_to(credentials, headers)
            headers.update(credentials)
        async with leg.direct.post(headers, body) as direct:
            return await Answer(direct.status, direct.headers, direct.read, direct.iter_chunks()).result(
                request_id
            )


@dataclass
class Answer:
    """One HTTP answer to a raw request, whichever client read it."""

    status: int
    headers: Mapping[str, str]
    read: Callable[[], Awaitable[bytes]]
    chunks: AsyncIterator[bytes]

    async def result(self, request_id: str) -> dict[str, Any]:
        """The JSON-RPC result, or the error the SDK's transport gives for this answer."""
        status, content_type = self.status, self.headers.get("content-type", "").lower()
        if status == 202:
            accepted = "server answered a request with 202 Accepted"
            raise MCPError(code=types.INVALID_REQUEST, message=accepted)
        if 300 <= status < 400:
            where = self.headers.get("location", "")
            raise MCPError(code=types.INVALID_REQUEST, message=f"redirect to {where!r} not followed")
        if status >= 400:
            raise await self._status_error(content_type)
        if content_type.startswith("application/json"):
            return _settle(_decode(await self.read()))
        if content_type.startswith("text/event-stream"):
            async for data in sse_data(self.chunks):
                message = _decode(data)
                if isinstance(message, dict) and message.get("id") == request_id and "method" not in message:
                    return _settle(message)
            raise MCPError(code=types.CONNECTION_CLOSED, message="SSE stream ended without a response")
        raise MCPError(code=types.INVALID_REQUEST, message=f"Unexpected content type: {content_type}")

    async def _status_error(self, content_type: str) -> MCPError:
        """The error of a non-2xx answer: the JSON-RPC error in its body, else what the status means."""
        if content_type.startswith("application/json"):
            try:
                message = orjson.loads(await self.read())
            except (orjson.JSONDecodeError, httpx2.StreamError, OSError):
                message = None
            if isinstance(message, dict) and isinstance(message.get("error"), dict):
                error = outcome(message)
                if isinstance(error, MCPError):
                    return error
        if self.status == 404:
            return MCPError(code=types.METHOD_NOT_FOUND, message="Not Found")
        return MCPError(code=types.INTERNAL_ERROR, message="Server returned an error response")


async def sse_data(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The ``data`` of each event of an SSE body (lines joined by newlines), as events complete."""
    buffer = b""
    data: list[bytes] = []
    async for chunk in chunks:
        buffer += chunk
        # A CR at the end may be the first half of a CRLF: keep it until the next chunk.
        cut = len(buffer) - 1 if buffer.endswith(b"\r") else len(buffer)
        *lines, rest = buffer[:cut].replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        buffer = rest + buffer[cut:]
        for line in lines:
            if event := _sse_line(line, data):
                yield event
    if buffer.endswith(b"\r") and (event := _sse_line(buffer[:-1], data)):  # the stream ended on a CR
        yield event


def _sse_line(line: bytes, data: list[bytes]) -> bytes | None:
    """Take one SSE line: a ``data`` field is kept in ``data``; a blank line ends the event (its data)."""
    if line.startswith(b"data:"):
        value = line[5:]
        data.append(value[1:] if value.startswith(b" ") else value)
    elif not line and data:
        event = b"\n".join(data)
        data.clear()
        return event
    return None


def _decode(data: bytes) -> object:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise MCPError(code=types.PARSE_ERROR, message=f"Failed to parse JSON response: {exc}") from None


def _settle(message: object) -> dict[str, Any]:
    """The result of a decoded JSON-RPC response (raises its error)."""
    if not isinstance(message, dict):
        raise MCPError(code=types.PARSE_ERROR, message="Failed to parse JSON response: not an object")
    result = outcome(message)
    if isinstance(result, MCPError):
        raise result
    return result
