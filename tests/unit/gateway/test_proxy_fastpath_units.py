"""The fast path's pure pieces: raw request / response matching on a backend transport, the Accept check."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage

from gateway.backends.raw_channel import RawChannel
from gateway.backends.stdio import LineWire
from gateway.fastpath import _accepts

LOST = -32001


class Wire:
    """The transport's write side: what the channel wrote, as JSON-RPC messages."""

    def __init__(self) -> None:
        self.send_stream, self.receive_stream = anyio.create_memory_object_stream[SessionMessage](16)
        self.channel = RawChannel(
            self.send_stream, protocol_version="2025-11-25", lost_code=LOST, lost_message="connection lost"
        )

    async def next_frame(self) -> SessionMessage:
        with anyio.fail_after(5):
            return await self.receive_stream.receive()


def response(request_id: Any, result: dict[str, Any]) -> SessionMessage:
    return SessionMessage(types.JSONRPCResponse(jsonrpc="2.0", id=request_id, result=result))


async def test_a_response_resolves_its_call_and_others_pass_through() -> None:
    wire = Wire()
    call = asyncio.ensure_future(wire.channel.request("tools/call", {"name": "echo"}, limit=None))
    frame = await wire.next_frame()
    assert isinstance(frame.message, types.JSONRPCRequest)
    assert frame.message.method == "tools/call"
    assert frame.message.params == {"name": "echo"}
    # HTTP backends get the headers the SDK's session-era stamp adds; stdio ignores them.
    assert frame.metadata is not None
    assert getattr(frame.metadata, "headers", None) == {
        "mcp-protocol-version": "2025-11-25",
        "mcp-name": "echo",
    }
    # The SDK session's own traffic (integer ids, notifications) is not the channel's.
    assert not wire.channel.deliver(response(0, {}))
    notification = types.JSONRPCNotification(jsonrpc="2.0", method="notifications/message", params={})
    assert not wire.channel.deliver(SessionMessage(notification))
    assert wire.channel.deliver(response(frame.message.id, {"content": []}))
    assert await call == {"content": []}
    assert wire.channel.pending == 0


async def raises_unknown_prompt(call: asyncio.Future[dict[str, Any]]) -> None:
    """The call fails with the backend's -32602 "Unknown prompt" error, its data kept."""
    with pytest.raises(MCPError) as caught:
        await call
    assert (caught.value.code, caught.value.error.message, caught.value.error.data) == (
        -32602,
        "Unknown prompt",
        {"name": "p"},
    )


async def test_an_error_response_raises_its_code_message_and_data() -> None:
    wire = Wire()
    call = asyncio.ensure_future(wire.channel.request("prompts/get", {"name": "p"}, limit=None))
    frame = await wire.next_frame()
    assert isinstance(frame.message, types.JSONRPCRequest)
    error = types.ErrorData(code=-32602, message="Unknown prompt", data={"name": "p"})
    wire.channel.deliver(SessionMessage(types.JSONRPCError(jsonrpc="2.0", id=frame.message.id, error=error)))
    await raises_unknown_prompt(call)


async def test_a_timeout_is_the_sdk_error_and_tells_the_backend_to_stop() -> None:
    wire = Wire()
    with pytest.raises(MCPError) as caught:
        await wire.channel.request("tools/call", {"name": "slow"}, limit=0.05)
    assert caught.value.code == types.REQUEST_TIMEOUT
    assert caught.value.error.message == "Request 'tools/call' timed out"
    sent = await wire.next_frame()
    cancel = await wire.next_frame()
    assert isinstance(sent.message, types.JSONRPCRequest)
    assert isinstance(cancel.message, types.JSONRPCNotification)
    assert cancel.message.method == "notifications/cancelled"
    assert cancel.message.params is not None
    assert cancel.message.params["requestId"] == sent.message.id
    # A late answer is dropped, not handed to the SDK session.
    assert wire.channel.deliver(response(sent.message.id, {}))


async def test_a_cancelled_caller_sends_notifications_cancelled() -> None:
    wire = Wire()
    call = asyncio.ensure_future(wire.channel.request("tools/call", {"name": "slow"}, limit=None))
    sent = await wire.next_frame()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    cancel = await wire.next_frame()
    assert isinstance(sent.message, types.JSONRPCRequest)
    assert isinstance(cancel.message, types.JSONRPCNotification)
    assert cancel.message.params == {"requestId": sent.message.id, "reason": "caller cancelled"}


async def test_the_transport_ending_fails_pending_and_later_calls() -> None:
    wire = Wire()
    call = asyncio.ensure_future(wire.channel.request("tools/list", None, limit=None))
    await wire.next_frame()
    wire.channel.close()
    with pytest.raises(MCPError) as caught:
        await call
    assert (caught.value.code, caught.value.error.message) == (LOST, "connection lost")
    with pytest.raises(MCPError) as again:
        await wire.channel.request("tools/list", None, limit=None)
    assert again.value.code == LOST


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (b"application/json, text/event-stream", True),
        (b"*/*", True),
        (b"application/*;q=0.9, text/*", True),
        (b"application/json", False),  # the SDK's SSE-mode front answers 406: leave it to the SDK
        (b"text/event-stream", False),
        (b"", False),
    ],
)
def test_accept_header_matches_the_sdk_check(accept: bytes, expected: bool) -> None:
    assert _accepts(accept) is expected


class LineRecorder:
    """A stdio transport's :class:`LineWire` stand-in: the lines the channel wrote, decoded."""

    def __init__(self, fail: bool = False) -> None:
        self.lines: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.fail = fail
        unused, _ = anyio.create_memory_object_stream[SessionMessage](1)
        self.channel = RawChannel(
            unused,
            protocol_version="2025-11-25",
            lost_code=LOST,
            lost_message="connection lost",
            wire=LineWire(self),
        )

    async def send(self, line: bytes) -> None:  # what LineWire calls on a stdin without a raw stream
        if self.fail:
            raise anyio.BrokenResourceError
        assert line.endswith(b"\n") and line.count(b"\n") == 1, line
        self.lines.put_nowait(json.loads(line))

    async def next_line(self) -> dict[str, Any]:
        with anyio.fail_after(5):
            return await self.lines.get()


async def test_on_a_line_wire_requests_are_json_lines_and_responses_are_taken_undecoded() -> None:
    wire = LineRecorder()
    call = asyncio.ensure_future(wire.channel.request("tools/call", {"name": "echo", "x": "é"}, limit=None))
    line = await wire.next_line()
    params = {"name": "echo", "x": "é"}
    assert line == {"jsonrpc": "2.0", "id": line["id"], "method": "tools/call", "params": params}
    # The SDK session's traffic is not the channel's: integer ids, notifications, and a server-to-client
    # request whose id merely looks like ours.
    assert not wire.channel.take({"jsonrpc": "2.0", "id": 0, "result": {}})
    assert not wire.channel.take({"jsonrpc": "2.0", "method": "notifications/message", "params": {}})
    assert not wire.channel.take({"jsonrpc": "2.0", "id": line["id"], "method": "roots/list"})
    assert wire.channel.take({"jsonrpc": "2.0", "id": line["id"], "result": {"content": []}})
    assert await call == {"content": []}
    assert wire.channel.pending == 0
    # A late or duplicated answer is dropped, never handed to the SDK session.
    assert wire.channel.take({"jsonrpc": "2.0", "id": line["id"], "result": {}})


async def test_on_a_line_wire_errors_keep_code_message_and_data() -> None:
    wire = LineRecorder()
    call = asyncio.ensure_future(wire.channel.request("prompts/get", {"name": "p"}, limit=None))
    line = await wire.next_line()
    error = {"code": -32602, "message": "Unknown prompt", "data": {"name": "p"}}
    assert wire.channel.take({"jsonrpc": "2.0", "id": line["id"], "error": error})
    await raises_unknown_prompt(call)


@pytest.mark.parametrize(
    "answer",
    [
        {"result": ["not", "an", "object"]},
        {"error": "boom"},
        {"error": {"code": "-1", "message": "code is a string"}},
        {"error": {"code": True, "message": "code is a bool"}},
    ],
)
async def test_a_malformed_answer_to_our_call_fails_it_at_once(answer: dict[str, Any]) -> None:
    """The caller gets a JSON-RPC error instead of waiting for the call timeout."""
    wire = LineRecorder()
    call = asyncio.ensure_future(wire.channel.request("tools/list", None, limit=None))
    line = await wire.next_line()
    assert "params" not in line
    assert wire.channel.take({"jsonrpc": "2.0", "id": line["id"], **answer})
    with pytest.raises(MCPError) as caught:
        await call
    assert caught.value.code == types.INTERNAL_ERROR
    assert "malformed" in caught.value.error.message


async def test_on_a_line_wire_cancel_and_timeout_are_notifications_on_the_same_wire() -> None:
    wire = LineRecorder()
    with pytest.raises(MCPError) as caught:
        await wire.channel.request("tools/call", {"name": "slow"}, limit=0.05)
    assert caught.value.code == types.REQUEST_TIMEOUT
    sent, cancel = await wire.next_line(), await wire.next_line()
    assert cancel["method"] == "notifications/cancelled"
    assert cancel["params"]["requestId"] == sent["id"]


async def test_on_a_line_wire_non_finite_numbers_are_written_as_the_sdk_writes_them() -> None:
    """json.loads took NaN from the client; the line to the backend is still valid JSON."""
    wire = LineRecorder()
    call = asyncio.ensure_future(
        wire.channel.request("tools/call", {"name": "n", "arguments": {"x": float("nan")}}, limit=None)
    )
    line = await wire.next_line()
    assert line["params"] == {"name": "n", "arguments": {"x": None}}
    wire.channel.take({"jsonrpc": "2.0", "id": line["id"], "result": {}})
    assert await call == {}


async def test_a_broken_line_wire_is_the_connection_lost_error() -> None:
    wire = LineRecorder(fail=True)
    with pytest.raises(MCPError) as caught:
        await wire.channel.request("tools/call", {"name": "x"}, limit=None)
    assert (caught.value.code, caught.value.error.message) == (LOST, "connection lost")
