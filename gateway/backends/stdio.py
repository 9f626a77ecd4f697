"""The stdio backend transport: the MCP server as a subprocess speaking newline-delimited JSON-RPC.

The process lifecycle is the SDK's ``stdio_client``'s, through its own helpers (:mod:`gateway.sdk_private`;
without them ``stdio_client`` itself runs the server and no :class:`LineWire` is yielded). The pipe
handling differs for the fast path (docs/proxy.md): :class:`LineWire` writes frames to stdin from the
calling task, and every line is decoded once and offered to ``LineWire.sink`` before what is left is
validated into a ``SessionMessage`` for the SDK session, as the SDK's transport does (one delivery at a
time; a line that is not JSON-RPC goes to the session as an exception).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TextIO

import anyio
import anyio.lowlevel
import mcp_types as types
from mcp.client.stdio import StdioServerParameters, get_default_environment, stdio_client
from mcp.shared.message import SessionMessage

from gateway import sdk_private

__all__ = ["LineSink", "LineWire", "stdio_transport"]

logger = logging.getLogger("mcp_operator.backend")

LineSink = Callable[[dict[str, Any]], bool]
"""Offered every decoded JSON object the server prints; True = taken (not passed to the session)."""

_WRITER_FLUSH_TIMEOUT = 0.5
"""How long the session's writer gets to flush accepted messages before stdin closes (the SDK's)."""


@dataclass(eq=False)
class LineWire:
    """The raw side of one stdio connection (see the module docstring)."""

    _stdin: Any
    sink: LineSink | None = None
    """Set by the fast path's channel while the backend session is up."""

    def __post_init__(self) -> None:
        self._stream = sdk_private.raw_stdin(self._stdin)

    async def send_line(self, line: bytes) -> None:
        """Write one frame (``line`` ends with a newline) to the server's stdin.

        Raises ``anyio.BrokenResourceError`` when the pipe is gone (the server died).
        """
        stream = self._stream
        if stream is None:
            await self._stdin.send(line)
            return
        try:
            stream.write(line)
            await stream.drain()  # returns at once unless the pipe's buffer is over its high-water mark
        except (ConnectionResetError, BrokenPipeError, RuntimeError) as exc:
            raise anyio.BrokenResourceError from exc

    async def send_message(self, message: types.JSONRPCMessage) -> None:
        """Write one JSON-RPC message as the SDK's stdio transport encodes it."""
        await self.send_line(message.model_dump_json(by_alias=True, exclude_unset=True).encode() + b"\n")


@contextlib.asynccontextmanager
async def stdio_transport(
    server: StdioServerParameters, errlog: TextIO = sys.stderr
) -> AsyncIterator[tuple[Any, ...]]:
    """Spawn the server and yield ``(read_stream, write_stream, wire)``; stop it on exit."""
    helpers = sdk_private.stdio_helpers()
    if helpers is None:
        async with stdio_client(server, errlog=errlog) as (read_stream, write_stream):
            yield read_stream, write_stream
        return
    process = await helpers.spawn(
        command=server.command,
        args=server.args,
        env=get_default_environment() | (server.env or {}),
        errlog=errlog,
        cwd=server.cwd,
    )
    # No awaits until the task group is entered: a cancellation in the gap would leak the process.
    read_writer, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](0)
    wire = LineWire(process.stdin)
    shutting_down = False
    writer_done = anyio.Event()

    def decode(line: bytes) -> SessionMessage | Exception | None:
        try:
            obj = json.loads(line)
        except ValueError as exc:
            logger.error("backend printed a line that is not JSON: %.200r", line)
            return exc
        sink = wire.sink
        if sink is not None and isinstance(obj, dict) and sink(obj):
            return None
        try:
            message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
        except ValueError as exc:
            logger.error("backend printed a line that is not a JSON-RPC message: %.200r", line)
            return exc
        return SessionMessage(message)

    async def stdout_reader() -> None:
        assert process.stdout is not None
        try:
            async with read_writer:
                try:
                    pending = b""
                    async for chunk in process.stdout:
                        lines = (pending + chunk).split(b"\n")
                        pending = lines.pop()
                        for line in lines:
                            if not line.strip():
                                continue
                            item = decode(line)
                            if item is None:
                                continue
                            try:
                                await read_writer.send(item)
                            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                                return  # the session is gone; only the drain below remains
                finally:
                    await helpers.drain_stdout(process)
        except anyio.ClosedResourceError:
            pass  # our own shutdown closed stdout under the read
        except (anyio.BrokenResourceError, ConnectionError):
            if not shutting_down:
                logger.exception("reading the backend's stdout failed mid-session")

    async def stdin_writer() -> None:
        assert process.stdin is not None
        try:
            async with write_reader:
                async for message in write_reader:
                    await wire.send_message(message.message)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            # The server may still be alive: end the read side so the session sees the connection end.
            await read_writer.aclose()
        finally:
            writer_done.set()

    async def shutdown() -> None:
        wire.sink = None
        read_stream.close()  # unblocks the reader into its drain
        write_stream.close()
        with anyio.move_on_after(_WRITER_FLUSH_TIMEOUT):
            await writer_done.wait()
        await helpers.stop(process)
        for stream in (read_stream, write_stream, read_writer, write_reader):
            await stream.aclose()
        await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        tg.start_soon(stdout_reader)
        tg.start_soon(stdin_writer)
        try:
            yield read_stream, write_stream, wire
        finally:
            shutting_down = True
            with anyio.CancelScope(shield=True):  # every wait inside is bounded
                await shutdown()
            tg.cancel_scope.cancel()
    await anyio.lowlevel.cancel_shielded_checkpoint()
