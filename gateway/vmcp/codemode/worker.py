"""The interpreter's child process: runs one script with starlark-pyo3, asking the gateway for its calls.

``python -m gateway.vmcp.codemode.worker`` reads one JSON line (the wrapped source, the tools by script
name, the data, the :class:`~.script.Limits`) and answers one line, ``{"result": value, "logs": [...]}``
or ``{"error": message}``. Between the two, each tool call the script makes is a line
``{"id": n, "tool": name, "arguments": {...}}`` answered by ``{"id": n, "value": v}`` or
``{"id": n, "error": message}``: the gateway makes the call, so every inner call takes the gateway's
one ``tools/call`` path, and only the gateway decides what a script can reach.

A child process, not a thread of the gateway: the interpreter holds Python's GIL while it runs, a
single builtin (``list(range(10000000))``) runs seconds without a pause, and a script can ask for
gigabytes; a process of its own keeps the gateway's event loop answering, can be killed at the
deadline whatever it is doing, and has its address space capped (:data:`MEMORY_LIMIT`). Scripts get no
``load()``, no file and no network: the standard Starlark globals, the tools, ``call_tool``,
``parallel`` and ``print``.

``parallel(fns)``: starlark-pyo3 cannot hand a Starlark function to Python, so a branch cannot be
called from another thread. Starlark is deterministic, though: a branch runs in an evaluation of its
own that replays the script up to the ``parallel`` call (tool results answered from the record, no call
repeated, steps not counted), takes its branch there, and hands its value back
(:class:`Evaluation`). Up to ``parallelMaxConcurrency`` branches run at once, each with the step
budget divided by the number of branches (ToolHive's rule).
"""

from __future__ import annotations

import json
import os
import queue
import resource
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Any

import starlark as sl

from .script import (
    EXECUTE_TOOL_SCRIPT,
    MAX_CALL_DEPTH,
    SCRIPT_FILE,
    STEPS_PER_TICK,
    Limits,
    ToolCallFailedError,
    call_arguments,
    plain,
    script_error,
)

__all__ = ["MEMORY_LIMIT", "Channel", "Evaluation", "Script", "main"]

MEMORY_LIMIT = 2 << 30
"""Address space of the child process (the interpreter's values and threads); past it the script dies."""
THREAD_STACK = 4 << 20


class ScriptError(Exception):
    """A failure the script reads as its error (the message is what it says)."""


class _BranchDoneError(Exception):
    """Ends a branch's evaluation once the branch has its value."""


_GATEWAY_GONE = "the gateway closed the script's channel"


class Channel:
    """JSON lines with the gateway: one request per tool call, answered by id (thread-safe)."""

    def __init__(self, rfile: IO[bytes], wfile: IO[bytes]) -> None:
        self._rfile, self._wfile = rfile, wfile
        self._lock = threading.Lock()
        self._waiting: dict[int, queue.SimpleQueue[dict[str, Any]]] = {}
        self._next = 0
        self._closed = False

    def send(self, message: dict[str, Any]) -> None:
        line = json.dumps(message, separators=(",", ":")).encode() + b"\n"
        with self._lock:
            self._wfile.write(line)
            self._wfile.flush()

    def receive_start(self) -> dict[str, Any]:
        data = json.loads(self._rfile.readline())
        assert isinstance(data, dict)
        return data

    def serve_replies(self) -> None:
        """Hand each reply to the call waiting for it (a thread of its own). When the gateway closes the
        pipe, the calls waiting and any later one fail, so the script ends (a script that calls no tool
        still finishes and answers: a closed stdin alone is not the gateway going away)."""
        for line in self._rfile:
            reply = json.loads(line)
            with self._lock:
                waiter = self._waiting.pop(reply.get("id"), None)
            if waiter is not None:
                waiter.put(reply)
        with self._lock:
            self._closed = True
            waiting, self._waiting = list(self._waiting.values()), {}
        for waiter in waiting:
            waiter.put({"error": _GATEWAY_GONE})

    def call(self, tool: str, arguments: dict[str, Any]) -> Any:
        answer: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        with self._lock:
            if self._closed:
                raise ToolCallFailedError(_GATEWAY_GONE)
            self._next += 1
            ident = self._next
            self._waiting[ident] = answer
        self.send({"id": ident, "tool": tool, "arguments": arguments})
        reply = answer.get()
        if "error" in reply:
            raise ToolCallFailedError(str(reply["error"]))
        return reply.get("value")


@dataclass
class Script:
    """One script, shared by its evaluations."""

    source: str
    lines: int
    tools: dict[str, str]
    """Script function name -> tool name."""
    data: dict[str, Any]
    limits: Limits
    call: Callable[[str, dict[str, Any]], Any]
    """Makes a tool call through the gateway (blocking); raises ToolCallFailedError."""


@dataclass
class _Event:
    """A step of an evaluation a branch replays: a tool call's value, a ``parallel``'s results, or (on
    the way to a branch) ``{"branch": k}``, the branch taken at that ``parallel``."""

    kind: str
    key: str
    value: Any = None


@dataclass
class Evaluation:
    """One run of the interpreter over the script: the whole script, or one ``parallel`` branch (it
    replays ``replay``, whose last event is that ``parallel``, taking the recorded branches on the way
    and ``branch`` there)."""

    script: Script
    budget: int
    replay: list[_Event] = field(default_factory=list)
    branch: int | None = None
    log: list[_Event] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    _position: int = 0
    _steps: int = 0
    _stopped: str | None = None
    _joined: list[Any] | None = None
    _branch_value: Any = None
    _branch_done: bool = False

    @property
    def live(self) -> bool:
        return self._position >= len(self.replay)

    def run(self) -> Any:
        """The script's (or branch's) value; raises ScriptError with the message the caller reads."""
        module = sl.Module()
        for ident, name in self.script.tools.items():
            module.add_callable(ident, self._tool(name))
        module.add_callable("call_tool", self._call_tool)
        module.add_callable("print", self._print)
        module.add_callable("__fork", self._fork)
        module.add_callable("__joined", lambda: self._joined)
        module.add_callable("__branch_done", self._finish_branch)
        for key, value in self.script.data.items():
            module[key] = value
        try:
            ast = sl.parse(SCRIPT_FILE, self.script.source)
        except sl.StarlarkError as exc:
            raise ScriptError(script_error(str(exc), self.script.lines, syntax=True)) from None
        options = sl.EvalOptions(check_cancelled=self._tick, max_callstack_size=MAX_CALL_DEPTH)
        try:
            value = sl.eval_with(options, module, ast, sl.Globals.standard()).value
        except sl.StarlarkError as exc:
            if self._branch_done:
                return self._branch_value
            message = str(exc)
            if self._stopped is not None:
                message = message.replace("Evaluation cancelled", self._stopped)
            raise ScriptError(script_error(message, self.script.lines)) from None
        if self.branch is not None:
            raise ScriptError("script failed: a parallel() branch ended without a value")
        return value

    def _tick(self) -> bool:
        if self.live:
            self._steps += STEPS_PER_TICK
            if self._steps > self.budget:
                self._stopped = f"step limit exceeded ({self.budget} steps)"
                return True
        return False

    def _next_recorded(self, kind: str, key: str) -> _Event | None:
        if self.live:
            return None
        event = self.replay[self._position]
        if event.kind != kind or event.key != key:
            raise ScriptError("the script took another path when replayed for a parallel() branch")
        self._position += 1
        self.log.append(event)
        return event

    def _tool(self, name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            return self._call(name, call_arguments(args, kwargs))

        return call

    def _call_tool(self, name: Any = None, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(name, str):
            raise ScriptError("call_tool: the first argument must be the tool's name (a string)")
        if name == EXECUTE_TOOL_SCRIPT:
            raise ScriptError(f"call_tool: {EXECUTE_TOOL_SCRIPT} cannot be called from a script")
        return self._call(name, call_arguments(args, kwargs))

    def _call(self, name: str, arguments: dict[str, Any]) -> Any:
        arguments = plain(arguments)
        key = name + json.dumps(arguments, sort_keys=True)
        recorded = self._next_recorded("call", key)
        if recorded is not None:
            return recorded.value
        value = self.script.call(name, arguments)
        self.log.append(_Event("call", key, value))
        return value

    def _print(self, *args: Any) -> None:
        if self.live:
            self.logs.append(" ".join(a if isinstance(a, str) else json.dumps(plain(a)) for a in args))

    def _fork(self, n: int) -> int | None:
        recorded = self._next_recorded("fork", str(n))
        if recorded is not None:
            if isinstance(recorded.value, dict):  # on the path to this branch: the branch taken there
                return int(recorded.value["branch"])
            self._joined = recorded.value
            return None
        budget = max(1, self.budget // max(n, 1))
        branches = [
            Evaluation(self.script, budget, [*self.log, _Event("fork", str(n), {"branch": k})], k)
            for k in range(n)
        ]
        outcomes: list[Any] = []
        if n:
            with ThreadPoolExecutor(max_workers=min(n, self.script.limits.parallel_max)) as pool:
                outcomes = list(pool.map(_outcome, branches))
        for k, outcome in enumerate(outcomes):
            if isinstance(outcome, ScriptError):
                raise ScriptError(f"parallel() branch {k}: {str(outcome).removeprefix('script ')}")
        for branch in branches:
            self.logs.extend(branch.logs)
        self._joined = outcomes
        self.log.append(_Event("fork", str(n), outcomes))
        return None

    def _finish_branch(self, value: Any) -> None:
        if self.branch is None or not self.live:
            raise ScriptError("__branch_done is parallel()'s own")
        self._branch_value, self._branch_done = value, True
        raise _BranchDoneError()


def _outcome(evaluation: Evaluation) -> Any:
    try:
        return evaluation.run()
    except ScriptError as exc:
        return exc


def main() -> None:
    """Run the script the gateway sends on stdin; answer on stdout."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    threading.stack_size(THREAD_STACK)
    channel = Channel(sys.stdin.buffer, sys.stdout.buffer)
    start = channel.receive_start()
    limits = Limits(**start["limits"])
    cpu = int(limits.script_timeout) + 5
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    threading.Thread(target=channel.serve_replies, daemon=True).start()
    script = Script(start["source"], start["lines"], start["tools"], start["data"], limits, channel.call)
    evaluation = Evaluation(script, limits.step_limit)
    try:
        value = evaluation.run()
    except ScriptError as exc:
        channel.send({"error": str(exc)})
    except RecursionError:
        channel.send({"error": "script failed: its values are nested too deeply"})
    except BaseException as exc:
        channel.send({"error": f"script failed: the interpreter stopped: {exc}"})
    else:
        channel.send({"result": plain(value), "logs": evaluation.logs})
    os._exit(0)  # the reply reader is still blocked on stdin


if __name__ == "__main__":
    main()
