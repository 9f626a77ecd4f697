"""The fast path's pure pieces: raw request / response matching on a backend transport, the Accept check."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage

from gateway.fastpath import _accepts
from gateway.raw_channel import RawChannel

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


async def test_an_error_response_raises_its_code_message_and_data() -> None:
    wire = Wire()
    call = asyncio.ensure_future(wire.channel.request("prompts/get", {"name": "p"}, limit=None))
    frame = await wire.next_frame()
    assert isinstance(frame.message, types.JSONRPCRequest)
    error = types.ErrorData(code=-32602, message="Unknown prompt", data={"name": "p"})
    wire.channel.deliver(SessionMessage(types.JSONRPCError(jsonrpc="2.0", id=frame.message.id, error=error)))
    with pytest.raises(MCPError) as caught:
        await call
    assert (caught.value.code, caught.value.error.message, caught.value.error.data) == (
        -32602,
        "Unknown prompt",
        {"name": "p"},
    )


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
