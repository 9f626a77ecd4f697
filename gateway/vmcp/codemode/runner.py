"""The gateway's side of one script: a child process runs the interpreter (:mod:`.worker`), the gateway
makes the tool calls it asks for, and the limits are enforced here.

- Each inner call gets ``toolCallTimeout``; a call over it answers the script a timeout error (the
  script fails there unless that was its last word, as in ToolHive).
- The whole script gets ``Limits.script_timeout`` (one minute): past it the child is killed, whatever
  it is doing, and the call answers a tool error saying so.
- At most :data:`MAX_CONCURRENT_SCRIPTS` children run at once per gateway; further scripts wait (within
  their own deadline) for a place.
- A spare child is started ahead of use, so a script does not wait for Python to start.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio
import anyio.abc
import structlog
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp.shared.exceptions import MCPError

from .script import Limits, ToolCallFailedError, error_result, script_result, wrap

__all__ = ["MAX_CONCURRENT_SCRIPTS", "InnerCall", "ScriptRunner"]

log = structlog.get_logger("gateway.vmcp.codemode")

MAX_CONCURRENT_SCRIPTS = 8
MAX_MESSAGE_BYTES = 64 << 20
"""Longest line the child may send (a tool call's arguments or the script's result)."""
WORKER = [sys.executable, "-I", "-m", "gateway.vmcp.codemode.worker"]
"""The child: isolated mode (no ``PYTHON*`` variables, no user site, no working directory on the path)."""
WORKER_ENV = {"LANG": "C.UTF-8"}
"""The child's whole environment: none of the gateway's variables (credentials among them) reach it."""

InnerCall = Callable[[str, dict[str, Any]], Awaitable[Any]]
"""Makes one tool call for the script: the tool's result as a script value (raises
:class:`~.script.ToolCallFailedError` for a tool error, ``MCPError`` for a refused call)."""


class ScriptRunner:
    """Runs scripts in child processes (see the module docstring)."""

    def __init__(
        self, command: list[str] | None = None, *, concurrency: int = MAX_CONCURRENT_SCRIPTS
    ) -> None:
        self.command = command or WORKER
        self._slots = anyio.Semaphore(concurrency)
        self._spare: anyio.abc.Process | None = None

    async def run(
        self, script: str, data: Mapping[str, Any], tools: Mapping[str, str], limits: Limits, call: InnerCall
    ) -> dict[str, Any]:
        """The tool result (raw JSON) of ``script`` with ``data`` and ``tools`` (script name -> tool)."""
        source, lines = wrap(script)
        start = {"source": source, "lines": lines, "tools": dict(tools), "data": dict(data)}
        start["limits"] = limits.to_json()
        with anyio.move_on_after(limits.script_timeout):
            async with self._slots:
                process = await self._process()
                try:
                    await process.stdin.send(_line(start))  # type: ignore[union-attr]
                    return await _converse(process, limits, call)
                finally:
                    await _stop(process)
        return error_result(f"script stopped: it ran longer than {limits.script_timeout:g}s")

    async def _process(self) -> anyio.abc.Process:
        """The spare child (started now when there is none), and a new spare started behind it."""
        process = self._spare if self._spare is not None and self._spare.returncode is None else None
        self._spare = None
        if process is None:
            process = await self._open()
        try:
            self._spare = await self._open()
        except OSError as exc:  # the script can still run; the next one starts its own child
            log.warning("could not start a spare script interpreter", error=str(exc))
        return process

    async def _open(self) -> anyio.abc.Process:
        return await anyio.open_process(
            self.command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=WORKER_ENV,
        )

    async def aclose(self) -> None:
        if self._spare is not None:
            await _stop(self._spare)
            self._spare = None


async def _converse(process: anyio.abc.Process, limits: Limits, call: InnerCall) -> dict[str, Any]:
    """Answer the child's tool calls until it sends the script's outcome."""
    assert process.stdout is not None and process.stdin is not None
    stdin = process.stdin
    reader = BufferedByteReceiveStream(process.stdout)
    lock = anyio.Lock()

    async def answer(request: dict[str, Any]) -> None:
        reply = await _inner_call(request, limits, call)
        async with lock:
            await stdin.send(_line(reply))

    outcome: dict[str, Any] | None = None
    async with anyio.create_task_group() as tg:
        while outcome is None:
            try:
                message = json.loads(await reader.receive_until(b"\n", MAX_MESSAGE_BYTES))
            except (anyio.EndOfStream, anyio.IncompleteRead, anyio.DelimiterNotFound):
                break
            if "tool" in message:
                tg.start_soon(answer, message)
            else:
                outcome = message
        tg.cancel_scope.cancel()  # calls still in flight have no one to answer to
    if outcome is None:
        with anyio.move_on_after(5):  # exiting, or stuck writing a line over the limit: killed then
            await process.wait()
        if process.returncode is None:
            process.kill()
        code = await process.wait()
        return error_result(
            f"script failed: the interpreter stopped (exit status {code}): the script used more "
            "memory or CPU than it may, or sent an answer too large"
        )
    if "error" in outcome:
        return error_result(str(outcome["error"]))
    return script_result(outcome.get("result"), outcome.get("logs") or [])


async def _inner_call(request: dict[str, Any], limits: Limits, call: InnerCall) -> dict[str, Any]:
    """One tool call the script asked for, as the reply the child reads."""
    ident, name = request.get("id"), str(request.get("tool"))
    arguments = request.get("arguments")
    if not isinstance(arguments, dict):
        arguments = {}
    try:
        with anyio.fail_after(limits.tool_call_timeout):
            value = await call(name, arguments)
    except TimeoutError:
        return {"id": ident, "error": f"tool {name!r} timed out after {limits.tool_call_timeout:g}s"}
    except ToolCallFailedError as exc:
        return {"id": ident, "error": str(exc)}
    except MCPError as exc:  # refused (authorization, unknown tool, unavailable backend)
        return {"id": ident, "error": f"tool {name!r}: {exc.error.message}"}
    return {"id": ident, "value": value}


async def _stop(process: anyio.abc.Process) -> None:
    with anyio.CancelScope(shield=True):
        if process.returncode is None:
            process.kill()
        await process.aclose()


def _line(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"
