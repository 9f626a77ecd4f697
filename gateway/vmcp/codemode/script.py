"""The pure parts of code mode: the ``execute_tool_script`` tool's face, script wrapping, value shapes.

Nothing here runs a script (:mod:`.worker` does) or does I/O; the module imports only the standard
library, since the interpreter's child process loads it too.

- A script is the body of a function (``wrap``), so a top-level ``return`` gives its result, as in
  ToolHive. Lines keep their numbers in messages (:func:`script_error` maps them back).
- A tool's result becomes a script value as ToolHive's ``ParseToolResult`` does (:func:`tool_value`):
  an ``isError`` result fails the call with its text; structured content is preferred (its
  ``{"result": v}`` wrapper unwrapped); else the first text content, parsed as JSON when it is JSON.
- The script's return value becomes one text content holding its JSON, followed by the script's
  ``print`` output as a second text content (:func:`script_result`); a failed script is a tool result
  with ``isError`` whose text names the line (:func:`error_result`), never a JSON-RPC error.
"""

from __future__ import annotations

import json
import keyword
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "BUILTIN_NAMES",
    "DEFAULT_PARALLEL_MAX",
    "DEFAULT_STEP_LIMIT",
    "DEFAULT_TOOL_CALL_TIMEOUT",
    "EXECUTE_TOOL_SCRIPT",
    "SCRIPT_FILE",
    "SCRIPT_TIMEOUT",
    "STEPS_PER_TICK",
    "Limits",
    "ToolCallFailedError",
    "bindings",
    "call_arguments",
    "error_result",
    "input_schema",
    "plain",
    "script_arguments",
    "script_error",
    "script_result",
    "tool_description",
    "tool_value",
    "wrap",
]

EXECUTE_TOOL_SCRIPT = "execute_tool_script"
"""The virtual tool's name (ToolHive's)."""

DEFAULT_STEP_LIMIT = 100_000
DEFAULT_PARALLEL_MAX = 10
DEFAULT_TOOL_CALL_TIMEOUT = 30.0
SCRIPT_TIMEOUT = 60.0
"""Wall-clock bound of one script, inner calls included (ToolHive's fixed one minute)."""
STEPS_PER_TICK = 1000
"""The interpreter reports progress once per about this many bytecode steps: the step limit's unit."""
MAX_CALL_DEPTH = 100
"""Deepest Starlark call stack a script may build (recursion ends there)."""
SCRIPT_FILE = "script.star"

BUILTIN_NAMES = frozenset({"call_tool", "parallel", "print"})
"""Names a script gets besides its tools (a data argument may not shadow them)."""

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NON_IDENTIFIER = re.compile(r"[^A-Za-z0-9_]")
_LOCATION = re.compile(re.escape(SCRIPT_FILE) + r":(\d+)(?::(\d+))?")
_EXAMPLE = """# 'deps' comes from the data argument. Bind the loop variable with a default argument
# (d=d) so each lambda keeps its own value.
results = parallel([
    lambda d=d: osv_query_vulnerability(package=d["name"], version=d["version"])
    for d in deps
])
vulnerable = [r for r in results if r.get("vulns")]
return {"checked": len(results), "vulnerable": vulnerable}"""


@dataclass(frozen=True)
class Limits:
    """What bounds one script (``spec.config.codeMode`` with its defaults applied)."""

    step_limit: int = DEFAULT_STEP_LIMIT
    """Interpreter steps of the script; a ``parallel`` branch gets this divided by the branches."""
    parallel_max: int = DEFAULT_PARALLEL_MAX
    """Branches of one ``parallel()`` running at once."""
    tool_call_timeout: float = DEFAULT_TOOL_CALL_TIMEOUT
    """Seconds one inner tool call may take."""
    script_timeout: float = SCRIPT_TIMEOUT
    """Seconds the whole script may take."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class ToolCallFailedError(Exception):
    """An inner tool call answered an error (its message is what the script's error says)."""


# ---- the tool's face --------------------------------------------------------------------------------


def bindings(tool_names: Iterable[str]) -> dict[str, str]:
    """Script function name -> tool name, for the tools a caller may use: names made identifiers
    (``-`` and other characters become ``_``, a leading digit gets ``_``); on a clash after that, the
    first tool keeps the name (``call_tool("name")`` reaches the other)."""
    bound: dict[str, str] = {}
    for name in tool_names:
        ident = _NON_IDENTIFIER.sub("_", name) or "_"
        if ident[0].isdigit():
            ident = "_" + ident
        if keyword.iskeyword(ident) or ident in BUILTIN_NAMES or ident in {"True", "False", "None"}:
            ident += "_"
        bound.setdefault(ident, name)
    return bound


def tool_description(tools: Sequence[tuple[str, str]]) -> str:
    """The tool's description: how to write a script, and the tools (name, description) it may call."""
    lines = [
        "Execute a Starlark script that orchestrates multiple tool calls and returns an aggregated "
        "result. Use 'return' to produce output.",
        "",
        "Available tools (callable as functions with keyword arguments; positional ones arrive as "
        "arg0, arg1, ...):",
    ]
    bound = bindings(name for name, _ in tools)
    descriptions = dict(tools)
    for ident, name in bound.items():
        text = descriptions.get(name, "")
        text = text if len(text) <= 80 else text[:77] + "..."
        alias = f' (tool "{name}")' if ident != name else ""
        lines.append(f"  - {ident}{alias}: {text}")
    lines += [
        "",
        'Use call_tool("name", ...) to call any tool by its original name.',
        "",
        "Built-in: parallel([fn1, fn2, ...]) runs zero-argument callables concurrently and returns "
        "their results in order. Use it with lambda to fan out tool calls. If a callable fails, the "
        "whole script fails, after its siblings have run to completion.",
        "",
        "A tool call's result is the tool's structured content, else its text (parsed when it is JSON); "
        "a tool error fails the script. print() output is returned after the result.",
        "",
        "Named data arguments passed in the 'data' parameter are available as top-level variables.",
    ]
    return "\n".join(lines)


def input_schema() -> dict[str, Any]:
    """The tool's input schema (a fresh dict: callers may keep it)."""
    return {
        "type": "object",
        "properties": {
            "script": {
                "type": "string",
                "description": "A Starlark script. Call any listed tool as a function, use loops and "
                "conditionals, fan out with parallel(), and use 'return' to produce output.",
                "examples": [_EXAMPLE],
            },
            "data": {
                "type": "object",
                "description": "Optional named values injected as top-level variables in the script.",
            },
        },
        "required": ["script"],
        "examples": [
            {
                "script": _EXAMPLE,
                "data": {
                    "deps": [
                        {"name": "lodash", "version": "4.17.20"},
                        {"name": "express", "version": "4.17.1"},
                    ]
                },
            }
        ],
    }


def script_arguments(
    arguments: Mapping[str, Any] | None, names: Iterable[str]
) -> tuple[str, dict[str, Any]] | str:
    """``(script, data)`` of a call, or what is wrong with it (``names``: the script's other globals)."""
    arguments = arguments or {}
    script = arguments.get("script")
    if not isinstance(script, str) or not script.strip():
        return f"{EXECUTE_TOOL_SCRIPT} requires a non-empty 'script' string argument"
    data = arguments.get("data")
    if data is None:
        return script, {}
    if not isinstance(data, dict):
        return f"'data' argument must be an object, got {type(data).__name__}"
    taken = set(names) | BUILTIN_NAMES
    for key in data:
        if not _IDENTIFIER.match(key) or keyword.iskeyword(key) or key.startswith("__"):
            return f"data argument {key!r} is not a usable variable name; use letters, digits and _"
        if key in taken:
            return f"data argument {key!r} conflicts with a builtin or tool name; rename it"
    return script, dict(data)


# ---- script source ----------------------------------------------------------------------------------

_PRELUDE = """
def parallel(fns):
    if type(fns) != "list":
        fail("parallel() takes a list of zero-argument callables, got " + type(fns))
    branch = __fork(len(fns))
    if branch == None:
        return __joined()
    __branch_done(fns[branch]())
"""


def wrap(script: str) -> tuple[str, int]:
    """The source the interpreter runs, and how many lines of it are the script's: the script is the
    body of ``__main__`` (line ``n`` of the script is line ``n + 1``), then the builtins written in
    Starlark, then the call. Triple-quoted strings spanning lines gain the body's indentation (as in
    ToolHive)."""
    lines = script.splitlines() or [""]
    body = "".join(f"    {line}\n" for line in lines)
    return f"def __main__():\n{body}    pass\n{_PRELUDE}\n__main__()\n", len(lines)


def script_error(message: str, script_lines: int, *, syntax: bool = False) -> str:
    """The interpreter's ``message`` (locations in the wrapped source) as the caller reads it: the
    innermost line of the script it failed at, the lines that called it, and the error's own text."""
    found = [(int(m[1]), int(m[2]) if m[2] else None) for m in _LOCATION.finditer(message)]
    ours = [(line - 1, col) for line, col in found if 2 <= line <= script_lines + 1]
    text = _error_text(message)
    if not ours:
        return f"script failed: {text}"
    line, col = ours[-1]
    if syntax:
        where = f"line {line}" + (f", column {col - 4}" if col is not None and col > 4 else "")
        return f"syntax error at {where}: {text}"
    callers: list[int] = []
    for n, _ in ours[:-1]:
        if n != line and n not in callers:
            callers.append(n)
    chain = f" (called from line {', '.join(map(str, reversed(callers)))})" if callers else ""
    return f"script failed at line {line}{chain}: {text}"


def _error_text(message: str) -> str:
    for raw in message.splitlines():
        if raw.startswith("error: "):
            text = raw[len("error: ") :]
            for prefix in ("ToolCallFailedError: ", "ScriptError: "):
                text = text.removeprefix(prefix)
            return text
    return message.strip().splitlines()[0] if message.strip() else "unknown error"


# ---- values -----------------------------------------------------------------------------------------


def call_arguments(args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """A tool's arguments from a script's call: positional ones as ``arg0``, ``arg1``, ... (ToolHive)."""
    arguments = {f"arg{i}": value for i, value in enumerate(args)}
    arguments.update(kwargs)
    return arguments


def tool_value(result: Mapping[str, Any]) -> Any:
    """A ``tools/call`` result (raw JSON) as the script sees it (see the module docstring); raises
    :class:`ToolCallFailedError` for a tool error."""
    content = result.get("content") or []
    texts = [c.get("text") for c in content if isinstance(c, dict) and c.get("type") == "text"]
    if result.get("isError"):
        raise ToolCallFailedError(texts[0] if texts and texts[0] else "tool execution error")
    structured = result.get("structuredContent")
    if structured is not None:
        if isinstance(structured, dict) and len(structured) == 1 and "result" in structured:
            return structured["result"]
        return structured
    if not texts or not isinstance(texts[0], str):
        return None
    try:
        return json.loads(texts[0])
    except ValueError:
        return texts[0]


def plain(value: Any) -> Any:
    """A script value as JSON data: tuples and sets become lists, keys strings, anything else text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {k if isinstance(k, str) else json.dumps(plain(k)): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    return str(value)


def script_result(value: Any, logs: Sequence[str]) -> dict[str, Any]:
    """The tool result of a script that returned ``value`` after printing ``logs`` (raw JSON)."""
    content = [{"type": "text", "text": json.dumps(value, separators=(",", ":"), ensure_ascii=False)}]
    if logs:
        content.append({"type": "text", "text": "Script logs:\n" + "\n".join(logs)})
    return {"content": content, "isError": False}


def error_result(message: str) -> dict[str, Any]:
    """A tool error result (raw JSON) whose text is ``message``."""
    return {"content": [{"type": "text", "text": message}], "isError": True}
