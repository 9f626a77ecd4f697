"""The raw 2026-07-28 leg's HTTP client and answer reading: keep-alive, chunked SSE, failures, and the
JSON-RPC errors it gives for each kind of answer (as the SDK's transport does)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from gateway.backends.h1 import H1Error, H1Pool, direct_origin
from gateway.backends.modern_http import Answer, sse_data

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _serve(handler: Handler) -> tuple[asyncio.Server, int, list[int]]:
    """A loopback server calling ``handler`` per connection; the list counts connections."""
    connections: list[int] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], connections


async def _request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.startswith(b"content-length")
    )
    return head, await reader.readexactly(length)


async def _json_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        try:
            _, body = await _request(reader)
        except asyncio.IncompleteReadError:
            return
        answer = b'{"jsonrpc":"2.0","id":"fp-1","result":{"echo":' + body + b"}}"
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(answer)).encode()
            + b"\r\n\r\n"
            + answer
        )
        await writer.drain()


async def test_connections_are_kept_alive_and_reused() -> None:
    server, port, connections = await _serve(_json_answers)
    pool = H1Pool("127.0.0.1", port, "/mcp", connect_timeout=5)
    try:
        for n in range(3):
            async with pool.post({"content-type": "application/json"}, b'{"n":%d}' % n) as answer:
                assert (
                    answer.status == 200
                    and await answer.read() == b'{"jsonrpc":"2.0","id":"fp-1","result":{"echo":{"n":%d}}}' % n
                )
        assert len(connections) == 1
    finally:
        pool.close()
        server.close()


async def test_a_chunked_sse_answer_is_read_as_its_events_arrive() -> None:
    async def sse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        events = [
            b'event: message\r\ndata: {"jsonrpc":"2.0","method":"notifications/message","params":{}}\r\n\r',
            b'\nevent: message\r\ndata: {"jsonrpc":"2.0","id":"fp-7",',
            b'\r\ndata: "result":{"ok":true}}\r\n\r\n',
        ]
        for event in events:
            writer.write(b"%x\r\n%s\r\n" % (len(event), event))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    server, port, _ = await _serve(sse)
    pool = H1Pool("127.0.0.1", port, "/mcp", connect_timeout=5)
    try:
        async with pool.post({}, b"{}") as answer:
            result = await Answer(answer.status, answer.headers, answer.read, answer.iter_chunks()).result(
                "fp-7"
            )
        assert result == {"ok": True}
    finally:
        pool.close()
        server.close()


async def test_a_server_closing_mid_answer_fails_the_exchange_and_drops_the_connection() -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{")
        await writer.drain()

    server, port, connections = await _serve(cut)
    pool = H1Pool("127.0.0.1", port, "/mcp", connect_timeout=5)
    try:
        for _ in range(2):
            with pytest.raises(H1Error, match="closed before the answer ended"):
                async with pool.post({}, b"{}") as answer:
                    await answer.read()
        assert len(connections) == 2  # a broken connection never goes back to the pool
    finally:
        pool.close()
        server.close()


async def test_a_header_with_a_line_break_is_refused_before_anything_is_sent() -> None:
    server, port, connections = await _serve(_json_answers)
    pool = H1Pool("127.0.0.1", port, "/mcp", connect_timeout=5)
    try:
        with pytest.raises(H1Error, match="line break"):
            async with pool.post({"authorization": "Bearer x\r\nx-injected: 1"}, b"{}"):
                pass
    finally:
        pool.close()
        server.close()
    assert len(connections) <= 1


async def test_connecting_to_a_closed_port_is_a_connection_error() -> None:
    server, port, _ = await _serve(_json_answers)
    server.close()
    await server.wait_closed()
    pool = H1Pool("127.0.0.1", port, "/mcp", connect_timeout=5)
    with pytest.raises(H1Error, match="failed"):
        async with pool.post({}, b"{}"):
            pass


def test_only_plain_http_without_a_proxy_takes_the_direct_client(monkeypatch: pytest.MonkeyPatch) -> None:
    assert direct_origin("http://mcp-github.tools.svc:8080/mcp") == ("mcp-github.tools.svc", 8080, "/mcp")
    assert direct_origin("http://10.0.0.7/mcp?x=1") == ("10.0.0.7", 80, "/mcp?x=1")
    assert direct_origin("https://mcp.example.com/mcp") is None
    monkeypatch.setenv("http_proxy", "http://proxy.corp:3128")
    monkeypatch.setenv("no_proxy", ".svc")
    assert direct_origin("http://mcp.example.com/mcp") is None
    assert direct_origin("http://mcp-github.tools.svc:8080/mcp") is not None


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _answer(status: int, content_type: str, body: bytes, **headers: str) -> dict[str, object]:
    async def read() -> bytes:
        return body

    return await Answer(status, {"content-type": content_type, **headers}, read, _chunks(body)).result("fp-1")


@pytest.mark.parametrize(
    ("status", "content_type", "body", "code", "message"),
    [
        (
            400,
            "application/json",
            b'{"jsonrpc":"2.0","id":null,"error":{"code":-32602,"message":"bad"}}',
            -32602,
            "bad",
        ),
        (404, "text/plain", b"nope", types.METHOD_NOT_FOUND, "Not Found"),
        (
            502,
            "text/html",
            b"<h1>bad gateway</h1>",
            types.INTERNAL_ERROR,
            "Server returned an error response",
        ),
        (202, "", b"", types.INVALID_REQUEST, "202 Accepted"),
        (307, "", b"", types.INVALID_REQUEST, "not followed"),
        (200, "text/plain", b"hi", types.INVALID_REQUEST, "Unexpected content type"),
        (200, "application/json", b"{not json", types.PARSE_ERROR, "Failed to parse JSON response"),
        (
            200,
            "text/event-stream",
            b"event: message\ndata: {}\n\n",
            types.CONNECTION_CLOSED,
            "without a response",
        ),
    ],
)
async def test_each_kind_of_answer_gives_the_sdk_transports_error(
    status: int, content_type: str, body: bytes, code: int, message: str
) -> None:
    with pytest.raises(MCPError) as raised:
        await _answer(status, content_type, body, location="http://elsewhere/")
    assert raised.value.error.code == code and message in raised.value.error.message


async def test_sse_events_join_data_lines_and_survive_any_chunking() -> None:
    stream = b'data: {"a":\r\ndata: 1}\r\n\r\n: comment\n\nevent: message\rdata:{"b":2}\r\r'
    for size in (1, 2, 3, 7, len(stream)):
        parts = [stream[i : i + size] for i in range(0, len(stream), size)]
        assert [d async for d in sse_data(_chunks(*parts))] == [b'{"a":\n1}', b'{"b":2}']
