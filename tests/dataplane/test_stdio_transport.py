"""The stdio backend transport against a real child process: raw lines beside the SDK session's messages.

The child is a few lines of Python that answer JSON-RPC requests on stdin (no MCP SDK), so each test
controls exactly what the backend prints.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.client.stdio import StdioServerParameters
from mcp.shared.message import SessionMessage

from gateway.backends.stdio import stdio_transport

# Answers each request line with its id and method; prints a non-JSON line and a blank line first when
# the request's method is "noise"; exits when stdin closes.
CHILD = r"""
import json, os, sys
for line in sys.stdin:
    message = json.loads(line)
    if message.get("method") == "noise":
        sys.stdout.write("not json\n\n")
    if "id" in message:
        answer = {"jsonrpc": "2.0", "id": message["id"], "result": {"method": message["method"]}}
        if message["method"] == "pid":
            answer["result"]["pid"] = os.getpid()
        sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
"""


def params(code: str = CHILD) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-c", code], env=dict(os.environ))


def line(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode() + b"\n"


async def test_lines_the_sink_takes_skip_the_session_and_the_rest_reach_it() -> None:
    taken: list[dict[str, Any]] = []
    arrived = anyio.Event()

    def sink(obj: dict[str, Any]) -> bool:
        if isinstance(obj.get("id"), str):
            taken.append(obj)
            arrived.set()
            return True
        return False

    with anyio.fail_after(20):
        async with stdio_transport(params()) as (read_stream, write_stream, wire):
            wire.sink = sink
            await wire.send_line(line({"jsonrpc": "2.0", "id": "fp-1", "method": "tools/call"}))
            request = types.JSONRPCRequest(jsonrpc="2.0", id=7, method="tools/list")
            await write_stream.send(SessionMessage(request))
            received = await read_stream.receive()
            assert isinstance(received, SessionMessage)
            assert isinstance(received.message, types.JSONRPCResponse)
            assert (received.message.id, received.message.result) == (7, {"method": "tools/list"})
            await arrived.wait()
            assert taken == [{"jsonrpc": "2.0", "id": "fp-1", "result": {"method": "tools/call"}}]


async def test_a_line_that_is_not_json_reaches_the_session_as_an_error_and_the_pipe_goes_on() -> None:
    with anyio.fail_after(20):
        async with stdio_transport(params()) as (read_stream, _, wire):
            await wire.send_line(line({"jsonrpc": "2.0", "id": 1, "method": "noise"}))
            first = await read_stream.receive()
            assert isinstance(first, ValueError)  # the SDK transport's behaviour; the blank line is skipped
            second = await read_stream.receive()
            assert isinstance(second, SessionMessage)
            assert isinstance(second.message, types.JSONRPCResponse)
            assert second.message.result == {"method": "noise"}


async def test_leaving_stops_the_child_and_a_dead_child_ends_the_read_stream() -> None:
    with anyio.fail_after(20):
        async with stdio_transport(params()) as (read_stream, _, wire):
            await wire.send_line(line({"jsonrpc": "2.0", "id": 1, "method": "pid"}))
            answer = await read_stream.receive()
            assert isinstance(answer, SessionMessage)
            assert isinstance(answer.message, types.JSONRPCResponse)
            pid = answer.message.result["pid"]
        with pytest.raises(ProcessLookupError):  # stdin closed: it exited and was reaped
            os.kill(pid, 0)
        # A child that exits on its own: the session sees the stream end, and writes fail cleanly.
        async with stdio_transport(params("import sys; sys.exit(0)")) as (read_stream, _, wire):
            with pytest.raises(anyio.EndOfStream):
                await read_stream.receive()
            with pytest.raises(anyio.BrokenResourceError):
                for _ in range(50):  # the pipe breaks once the child is gone
                    await wire.send_line(b'{"jsonrpc":"2.0","method":"x"}\n')
                    await anyio.sleep(0.02)
