"""The fast path's side of the ASGI exchange: answers, session-era SSE replies, call cancellation.

:func:`send_json` writes a whole ``application/json`` answer; :class:`SessionReply` is one session-era
answer that turns into an SSE stream once a notification or a keep-alive must go first; :class:`Call` is
a call in flight in the request's own task and why it was cancelled (:func:`watch` cancels it when the
client disconnects); :func:`replay` hands an already-read body to the SDK path. Used by
:mod:`gateway.fastpath` only; split out so each module keeps one job.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import orjson
from starlette.types import Message, Receive, Send

from gateway.sdk_private import SessionLease

__all__ = [
    "JSON_HEADERS",
    "Call",
    "SessionReply",
    "disconnected",
    "dumps",
    "encode_response",
    "replay",
    "send_json",
    "session_header",
    "sse",
    "watch",
]

JSON_HEADERS = [(b"content-type", b"application/json")]
SSE_HEADERS = [
    (b"cache-control", b"no-cache, no-transform"),
    (b"connection", b"keep-alive"),
    (b"content-type", b"text/event-stream"),
]


def session_header(lease: SessionLease) -> tuple[bytes, bytes]:
    return (b"mcp-session-id", lease.session_id.encode("latin-1"))


def sse(message: bytes) -> bytes:
    """One SSE event carrying an encoded JSON-RPC message."""
    return b"event: message\r\ndata: " + message + b"\r\n\r\n"


async def send_json(send: Send, status: int, body: bytes, *headers: tuple[bytes, bytes]) -> None:
    """A whole ``application/json`` answer (one start, one body message)."""
    length = (b"content-length", str(len(body)).encode())
    await send(
        {"type": "http.response.start", "status": status, "headers": [*JSON_HEADERS, *headers, length]}
    )
    await send({"type": "http.response.body", "body": body})


class Call:
    """A fast-path call in flight, run in the request's own task, and why it was cancelled: the client
    went away (:func:`watch`) or, in a session, a ``notifications/cancelled`` named it."""

    __slots__ = ("reason", "task")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.reason: str | None = None

    @classmethod
    def current(cls) -> Call:
        task = asyncio.current_task()
        assert task is not None
        return cls(task)

    def cancel(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
            self.task.cancel()


async def watch(receive: Receive, call: Call) -> None:
    await disconnected(receive)
    call.cancel("gone")


class SessionReply:
    """One session-era answer: plain JSON when the result is all there is to send; an SSE stream (what
    the SDK always answers) once something must go out before the result: a notification for the
    request (the backend's log messages) or a keep-alive comment. The client accepts both (the Accept
    check), and the spec lets the server pick per request."""

    __slots__ = ("done", "lock", "pinger", "send", "session_header", "streaming")

    def __init__(self, send: Send, lease: SessionLease) -> None:
        self.send = send
        self.session_header = session_header(lease)
        self.streaming = False
        self.done = False
        self.lock = asyncio.Lock()
        self.pinger: asyncio.Task[None] | None = None

    async def _chunk(self, body: bytes, *, more: bool) -> None:
        if not self.streaming:
            self.streaming = True
            headers = [*SSE_HEADERS, self.session_header]
            await self.send({"type": "http.response.start", "status": 200, "headers": headers})
        await self.send({"type": "http.response.body", "body": body, "more_body": more})

    async def event(self, message: dict[str, Any]) -> None:
        """One notification on this request's stream (dropped once the answer went out)."""
        async with self.lock:
            if not self.done:
                await self._chunk(sse(dumps(message)), more=True)

    def keep_alive(self, interval: float) -> None:
        """Timer callback: send an SSE comment now and every ``interval`` seconds until the answer."""

        async def ping() -> None:
            while True:
                async with self.lock:
                    if self.done:
                        return
                    await self._chunk(b": ping\r\n\r\n", more=True)
                await asyncio.sleep(interval)

        self.pinger = asyncio.get_running_loop().create_task(ping())

    def stop_keep_alive(self) -> None:
        if self.pinger is not None:
            self.pinger.cancel()

    async def finish(self, message: bytes | None) -> None:
        """The encoded answer (None: end the stream unanswered, as the SDK does for a cancelled request)."""
        async with self.lock:
            self.done = True
            if self.streaming or message is None:
                await self._chunk(b"" if message is None else sse(message), more=False)
                return
            await send_json(self.send, 200, message, self.session_header)


def dumps(data: object) -> bytes:
    """Compact JSON (orjson; the standard encoder for what orjson refuses: integers beyond 64 bits, lone
    surrogates)."""
    try:
        return orjson.dumps(data)
    except TypeError:
        return json.dumps(data, separators=(",", ":")).encode()


def encode_response(request_id: object, result: bytes) -> bytes:
    """A JSON-RPC response from its id and its already encoded result (what :func:`dumps` would write for
    the whole message)."""
    return b'{"jsonrpc":"2.0","id":' + dumps(request_id) + b',"result":' + result + b"}"


async def disconnected(receive: Receive) -> None:
    """Returns when the client disconnects (nothing else arrives once the body is read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


def replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that yields the already-read messages first, then the real ones."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
