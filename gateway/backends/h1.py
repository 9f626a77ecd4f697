"""A small HTTP/1.1 client for the raw 2026-07-28 leg: keep-alive POSTs to one plain-HTTP origin.

Why not the ``httpx2`` client the SDK session uses: on the gateway's hot path (one POST per routed call)
its layers (auth flow, redirect handling, the connection pool's bookkeeping, h11 on anyio streams) were
most of the gateway's CPU per call (docs/benchmarks.md, "Virtual MCP gateway"). :class:`H1Pool` writes
each request in one ``write`` and parses the answer with ``httptools`` (the parser uvicorn uses on the
front) on an asyncio protocol. It serves only ``http://`` origins reached without an HTTP proxy; HTTPS and
proxied backends keep the ``httpx2`` client (:func:`direct_origin` decides). Policy is the caller's:
credentials are headers it passes, redirects are answers it reads, never followed here.

A connection goes back to the pool only after a complete answer that allows keep-alive; a cancelled or
failed exchange closes its connection (for a 2026-07-28 request, closing the POST is the cancellation).
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit

import httptools

__all__ = ["H1Pool", "H1Response", "direct_origin"]

_IDLE_CONNECTIONS = 16
"""Idle keep-alive connections kept per origin (more are closed after their answer)."""
_IDLE_SECONDS = 4.0
"""An idle connection older than this is closed, not reused: common servers (uvicorn, Node) close idle
keep-alive connections after 5 s, and a request written as the server closes could not be retried (a
POST is not idempotent)."""


def direct_origin(url: str) -> tuple[str, int, str] | None:
    """``(host, port, path)`` when :class:`H1Pool` may serve ``url``: plain HTTP and no proxy configured
    for it in the environment (``http_proxy`` / ``no_proxy``, as ``httpx2`` would honour them)."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        return None
    proxied = urllib.request.getproxies_environment().get("http")
    if proxied and not urllib.request.proxy_bypass_environment(parts.hostname):  # type: ignore[attr-defined]
        return None
    path = parts.path or "/"
    return parts.hostname, parts.port or 80, path + (f"?{parts.query}" if parts.query else "")


class H1Error(ConnectionError):
    """The connection failed, closed early or the answer did not parse."""


@dataclass(eq=False)
class H1Response:
    """One answer: status and headers at once, the body as it arrives."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    keep_alive: bool = False
    chunks: list[bytes] = field(default_factory=list)
    complete: bool = False
    error: BaseException | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def read(self) -> bytes:
        """The whole body."""
        while not self.complete:
            await self._wait()
        return b"".join(self.chunks)

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """The body's chunks as they arrive (an SSE stream)."""
        while True:
            while self.chunks:
                yield self.chunks.pop(0)
            if self.complete:
                return
            await self._wait()

    async def _wait(self) -> None:
        if self.error is not None:
            raise self.error
        self._changed.clear()
        await self._changed.wait()
        if self.error is not None:
            raise self.error

    def _signal(self) -> None:
        self._changed.set()


class _Connection(asyncio.Protocol):
    """One keep-alive connection; parser callbacks fill the current :class:`H1Response`."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.response: H1Response | None = None
        self.headers_done: asyncio.Future[None] | None = None
        self.closed = False
        self.idle_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(H1Error(f"malformed HTTP answer: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        response = self.response
        if response is not None and not response.complete:
            self._fail(H1Error(f"connection closed before the answer ended ({exc or 'by the server'})"))

    def _fail(self, error: BaseException) -> None:
        if self.headers_done is not None and not self.headers_done.done():
            self.headers_done.set_exception(error)
        if self.response is not None and self.response.error is None:
            self.response.error = error
            self.response._signal()

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        if self.response is not None:
            self.response.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        if self.response is not None:
            self.response.status = self.parser.get_status_code()
            self.response.keep_alive = self.parser.should_keep_alive()
        if self.headers_done is not None and not self.headers_done.done():
            self.headers_done.set_result(None)

    def on_body(self, body: bytes) -> None:
        if self.response is not None:
            self.response.chunks.append(body)
            self.response._signal()

    def on_message_complete(self) -> None:
        if self.response is not None:
            self.response.complete = True
            self.response._signal()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class H1Pool:
    """Keep-alive connections to one ``http://`` origin (see the module docstring)."""

    def __init__(self, host: str, port: int, path: str, *, connect_timeout: float) -> None:
        self.host, self.port, self.path = host, port, path
        self.connect_timeout = connect_timeout
        authority = host if port == 80 else f"{host}:{port}"
        if ":" in host and not host.startswith("["):
            authority = f"[{host}]" if port == 80 else f"[{host}]:{port}"
        self._head = f"POST {path} HTTP/1.1\r\nhost: {authority}\r\n".encode("latin-1")
        self._idle: list[_Connection] = []
        self._closed = False

    @contextlib.asynccontextmanager
    async def post(self, headers: dict[str, str], body: bytes) -> AsyncIterator[H1Response]:
        """Send one POST; the answer's status and headers are in when the block starts. The connection
        returns to the pool when the block ends after the whole answer was read, else it is closed."""
        connection = await self._acquire()
        response = H1Response()
        connection.response = response
        connection.headers_done = asyncio.get_running_loop().create_future()
        reusable = False
        try:
            lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
            if "\r" in lines.replace("\r\n", "") or lines.count("\n") != len(headers):
                raise H1Error("a request header contains a line break")  # never let one inject a header
            request = self._head + f"{lines}content-length: {len(body)}\r\n\r\n".encode("latin-1") + body
            assert connection.transport is not None
            connection.transport.write(request)
            await connection.headers_done
            yield response
            reusable = response.complete and response.keep_alive and response.error is None
        finally:
            connection.response = connection.headers_done = None
            if (
                reusable
                and not connection.closed
                and not self._closed
                and len(self._idle) < _IDLE_CONNECTIONS
            ):
                connection.idle_since = asyncio.get_running_loop().time()
                self._idle.append(connection)
            else:
                connection.close()

    async def _acquire(self) -> _Connection:
        if self._closed:
            raise H1Error("the backend connection pool is closed")
        loop = asyncio.get_running_loop()
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed and loop.time() - connection.idle_since < _IDLE_SECONDS:
                return connection
            connection.close()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, protocol = await loop.create_connection(_Connection, self.host, self.port)
        except TimeoutError:
            raise H1Error(f"connect to {self.host}:{self.port} timed out") from None
        except OSError as exc:
            raise H1Error(f"connect to {self.host}:{self.port} failed: {exc}") from exc
        return protocol

    def close(self) -> None:
        """Close every idle connection; connections in use close when their exchange ends."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
