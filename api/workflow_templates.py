"""A small, safe evaluator of the Go template expressions composite tools use (pure, no I/O).

Supported, with Go's text/template meaning: text with ``{{ ... }}`` actions (and the ``{{-`` / ``-}}``
trim markers and ``{{/* comments */}}``); pipelines ``a | f b``; operands: field paths from the root
(``.params.url``, ``.steps.fetch.output.text``; a key that is not an identifier through ``index``:
``index .steps "step-1" "output"``), a parenthesised pipeline followed by fields
(``(fromJson .steps.api.output.text).user.name``), strings (``"..."`` and raw ```...```), numbers,
``true``, ``false`` and ``nil``; the functions ``json``, ``fromJson``, ``quote``, ``eq``, ``ne``, ``lt``,
``le``, ``gt``, ``ge``, ``and``, ``or``, ``not``, ``index``, ``printf`` and ``len``. Anything else (``if``
/ ``range`` / ``with`` blocks, variables, other functions) is refused when the template is parsed, so a
definition that uses it is refused at validation, not at call time.

Values print as Go prints them (``<no value>`` for a missing key, ``map[k:v]``, ``[a b]``, ``3`` for the
JSON number 3.0). Unlike Go, numbers compare by value whatever their JSON spelling (``10`` equals
``10.0``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FUNCTIONS",
    "Template",
    "TemplateError",
    "format_value",
    "parse_template",
    "truthy",
]

NO_VALUE = "<no value>"
_KEYWORDS = frozenset(
    {"if", "else", "end", "range", "with", "define", "template", "block", "break", "continue"}
)
_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<string>"(?:[^"\\\n]|\\.)*")
      | (?P<raw>`[^`]*`)
      | (?P<number>[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?))
      | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\.)
      | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<punct>[()|])
      | (?P<other>.)""",
    re.VERBOSE | re.DOTALL,
)


class TemplateError(ValueError):
    """A template that cannot be parsed, or an expression that cannot be evaluated."""


# ---- syntax tree --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Field:
    path: tuple[str, ...]
    """From the root (``()`` is ``.`` itself)."""


@dataclass(frozen=True)
class _Literal:
    value: Any


@dataclass(frozen=True)
class _Function:
    name: str


@dataclass(frozen=True)
class _Chain:
    pipeline: _Pipeline
    path: tuple[str, ...]
    """Fields read from the parenthesised pipeline's value (may be empty)."""


_Operand = _Field | _Literal | _Function | _Chain


@dataclass(frozen=True)
class _Command:
    args: tuple[_Operand, ...]


@dataclass(frozen=True)
class _Pipeline:
    commands: tuple[_Command, ...]


@dataclass(frozen=True)
class Template:
    """A parsed template: text and actions, in order."""

    source: str
    parts: tuple[str | _Pipeline, ...]

    def references(self) -> list[tuple[str, ...]]:
        """Every field path read from the root, in order of appearance (``.steps.a.output`` ->
        ``("steps", "a", "output")``)."""
        found: list[tuple[str, ...]] = []
        for part in self.parts:
            if isinstance(part, _Pipeline):
                _collect(part, found)
        return found

    def render(self, data: Mapping[str, Any]) -> str:
        """The text with every action replaced by its value as Go prints it."""
        out = []
        for part in self.parts:
            out.append(part if isinstance(part, str) else format_value(_run(part, data, None)))
        return "".join(out)


def _collect(pipeline: _Pipeline, found: list[tuple[str, ...]]) -> None:
    for command in pipeline.commands:
        if (path := _index_path(command)) is not None:
            found.append(path)
            continue
        for arg in command.args:
            if isinstance(arg, _Field):
                found.append(arg.path)
            elif isinstance(arg, _Chain):
                if len(arg.pipeline.commands) == 1 and (inner := _index_path(arg.pipeline.commands[0])):
                    found.append(inner + arg.path)
                else:
                    _collect(arg.pipeline, found)


def _index_path(command: _Command) -> tuple[str, ...] | None:
    """The path ``index .steps "step-1" "output"`` reads (``steps``, ``step-1``, ``output``): how a key
    that is not an identifier is reached, as in Go; None unless every key is a string literal."""
    args = command.args
    if not (isinstance(args[0], _Function) and args[0].name == "index" and len(args) > 2):
        return None
    if not isinstance(args[1], _Field) or not all(
        isinstance(a, _Literal) and isinstance(a.value, str) for a in args[2:]
    ):
        return None
    return args[1].path + tuple(str(a.value) for a in args[2:] if isinstance(a, _Literal))


# ---- parsing ------------------------------------------------------------------------------------------


def parse_template(source: str) -> Template:
    """Parse ``source``; raises :class:`TemplateError` saying what is wrong and where."""
    parts: list[str | _Pipeline] = []
    pos = 0
    while True:
        start = source.find("{{", pos)
        if start < 0:
            parts.append(source[pos:])
            break
        text = source[pos:start]
        body_start = start + 2
        if source.startswith("- ", body_start) or source[body_start : body_start + 2] in ("-\t", "-\n"):
            text = text.rstrip()
            body_start += 1
        end = _action_end(source, body_start)
        body = source[body_start:end]
        pos = end + 2
        if body.endswith(" -") or body.endswith("\t-") or body.endswith("\n-"):
            body = body[:-1]
            trailing = len(source[pos:]) - len(source[pos:].lstrip())
            pos += trailing
        parts.append(text)
        stripped = body.strip()
        if stripped.startswith("/*"):
            if not stripped.endswith("*/"):
                raise TemplateError(f"unclosed comment in {source!r}")
            continue
        parts.append(_Parser(body, source).pipeline_to_end())
    return Template(source, tuple(p for p in parts if p != ""))


def _action_end(source: str, pos: int) -> int:
    quote = ""
    i = pos
    while i < len(source):
        char = source[i]
        if quote:
            if char == "\\" and quote == '"':
                i += 1
            elif char == quote:
                quote = ""
        elif char in '"`':
            quote = char
        elif source.startswith("}}", i):
            return i
        i += 1
    raise TemplateError(f"unclosed action: '{{{{' without '}}}}' in {source!r}")


@dataclass
class _Token:
    kind: str
    text: str
    start: int
    end: int


class _Parser:
    def __init__(self, body: str, source: str) -> None:
        self.source = source
        self.tokens = [
            _Token(str(m.lastgroup), m.group(), m.start(), m.end())
            for m in _TOKEN.finditer(body)
            if m.lastgroup != "space"
        ]
        self.pos = 0

    def fail(self, message: str) -> TemplateError:
        return TemplateError(f"{message} in {self.source!r}")

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def pipeline_to_end(self) -> _Pipeline:
        pipeline = self.pipeline()
        if (token := self.peek()) is not None:
            raise self.fail(f"unexpected {token.text!r}")
        return pipeline

    def pipeline(self) -> _Pipeline:
        commands = [self.command()]
        while (token := self.peek()) is not None and token.text == "|":
            self.pos += 1
            commands.append(self.command())
        for i, command in enumerate(commands):
            first = command.args[0]
            if isinstance(first, _Function):
                _check_arity(first.name, len(command.args) - 1 + (i > 0), self.fail)
            elif i > 0:
                raise self.fail("only a function can follow '|'")
        return _Pipeline(tuple(commands))

    def command(self) -> _Command:
        args: list[_Operand] = []
        while (token := self.peek()) is not None and token.text not in ("|", ")"):
            args.append(self.operand())
        if not args:
            raise self.fail("empty command")
        if not isinstance(args[0], _Function) and len(args) > 1:
            raise self.fail("a value cannot take arguments (only a function can)")
        if any(isinstance(a, _Function) for a in args[1:]):
            raise self.fail("a function used as an argument needs parentheses")
        return _Command(tuple(args))

    def operand(self) -> _Operand:
        token = self.tokens[self.pos]
        self.pos += 1
        if token.kind == "field":
            return _Field(() if token.text == "." else tuple(token.text[1:].split(".")))
        if token.kind == "string":
            try:
                return _Literal(json.loads(token.text))
            except ValueError:
                raise self.fail(f"unsupported escape in string {token.text}") from None
        if token.kind == "raw":
            return _Literal(token.text[1:-1])
        if token.kind == "number":
            return _Literal(_number(token.text))
        if token.kind == "ident":
            return self.identifier(token.text)
        if token.text == "(":
            inner = self.pipeline()
            close = self.peek()
            if close is None or close.text != ")":
                raise self.fail("missing ')'")
            self.pos += 1
            path: tuple[str, ...] = ()
            after = self.peek()
            if after is not None and after.kind == "field" and after.start == close.end and after.text != ".":
                self.pos += 1
                path = tuple(after.text[1:].split("."))
            return _Chain(inner, path)
        if token.text.startswith("$"):
            raise self.fail("template variables ($name) are not supported")
        raise self.fail(f"unexpected {token.text!r}")

    def identifier(self, name: str) -> _Operand:
        if name in ("true", "false"):
            return _Literal(name == "true")
        if name == "nil":
            return _Literal(None)
        if name in _KEYWORDS:
            raise self.fail(
                f"{{{{{name}}}}} is not supported (no if/range/with blocks); compute values with "
                "functions such as eq, and, or, not, index, printf"
            )
        if name not in FUNCTIONS:
            raise self.fail(f"unknown function {name!r}; the functions are {', '.join(sorted(FUNCTIONS))}")
        return _Function(name)


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


_ARITY: dict[str, tuple[int, int | None]] = {
    "json": (1, 1),
    "fromJson": (1, 1),
    "quote": (1, 1),
    "not": (1, 1),
    "len": (1, 1),
    "eq": (2, None),
    "ne": (2, 2),
    "lt": (2, 2),
    "le": (2, 2),
    "gt": (2, 2),
    "ge": (2, 2),
    "and": (1, None),
    "or": (1, None),
    "index": (1, None),
    "printf": (1, None),
}


def _check_arity(name: str, given: int, fail: Callable[[str], TemplateError]) -> None:
    low, high = _ARITY[name]
    if given < low or (high is not None and given > high):
        wanted = f"{low}" if low == high else f"at least {low}" if high is None else f"{low}-{high}"
        raise fail(f"{name} takes {wanted} argument(s), got {given}")


# ---- evaluation ---------------------------------------------------------------------------------------


def _run(pipeline: _Pipeline, data: Mapping[str, Any], _: None) -> Any:
    value: Any = None
    for i, command in enumerate(pipeline.commands):
        first = command.args[0]
        if isinstance(first, _Function):
            args = [_operand(a, data) for a in command.args[1:]]
            if i > 0:
                args.append(value)
            value = _call(first.name, args)
        else:
            value = _operand(first, data)
    return value


def _operand(operand: _Operand, data: Mapping[str, Any]) -> Any:
    if isinstance(operand, _Literal):
        return operand.value
    if isinstance(operand, _Field):
        return _walk(data, operand.path, "")
    if isinstance(operand, _Chain):
        return _walk(_run(operand.pipeline, data, None), operand.path, "(...)")
    raise TemplateError(f"function {operand.name} used as a value")  # excluded by the parser


def _walk(value: Any, path: Sequence[str], where: str) -> Any:
    for name in path:
        if isinstance(value, Mapping):
            value = value.get(name)
        elif value is None:
            raise TemplateError(f"{where or '.'} has no value, so .{name} cannot be read")
        else:
            raise TemplateError(f"{where or '.'} is a {_kind(value)}, which has no field .{name}")
        where = f"{where}.{name}"
    return value


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    return "map" if isinstance(value, Mapping) else type(value).__name__


def truthy(value: Any) -> bool:
    """Go's truth: false, 0, nil and empty strings, lists and maps are false."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str | list | tuple | Mapping):
        return len(value) > 0
    return True


def format_value(value: Any) -> str:
    """A value as Go's ``%v`` prints it."""
    if value is None:
        return NO_VALUE
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value) if math.isfinite(value) else ("+Inf" if value > 0 else "-Inf")
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        return "[" + " ".join(format_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{format_value(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def _comparable(a: Any, b: Any, name: str) -> None:
    numbers = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        if not (isinstance(a, bool) and isinstance(b, bool)) and name not in ("eq", "ne"):
            raise TemplateError(f"{name}: cannot order booleans")
        if isinstance(a, bool) != isinstance(b, bool) and None not in (a, b):
            raise TemplateError(f"{name}: incompatible types for comparison ({_kind(a)} and {_kind(b)})")
        return
    if isinstance(a, numbers) and isinstance(b, numbers):
        return
    if isinstance(a, str) and isinstance(b, str):
        return
    if name in ("eq", "ne") and (a is None or b is None):
        return
    raise TemplateError(f"{name}: incompatible types for comparison ({_kind(a)} and {_kind(b)})")


def _eq(first: Any, *others: Any) -> bool:
    for other in others:
        _comparable(first, other, "eq")
        if first == other:
            return True
    return False


def _ordered(name: str, test: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        _comparable(a, b, name)
        if a is None or b is None or isinstance(a, bool):
            raise TemplateError(f"{name}: cannot order {_kind(a)} and {_kind(b)}")
        return test(a, b)

    return compare


def _ne(a: Any, b: Any) -> bool:
    _comparable(a, b, "ne")
    return bool(a != b)


def _and(*values: Any) -> Any:
    for value in values:
        if not truthy(value):
            return value
    return values[-1]


def _or(*values: Any) -> Any:
    for value in values:
        if truthy(value):
            return value
    return values[-1]


def _index(value: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(value, Mapping):
            value = value.get(format_value(key) if not isinstance(key, str) else key)
        elif (
            isinstance(value, list | tuple | str)
            and isinstance(key, int | float)
            and not isinstance(key, bool)
        ):
            if not float(key).is_integer() or not 0 <= int(key) < len(value):
                raise TemplateError(f"index: {format_value(key)} is out of range (length {len(value)})")
            value = value[int(key)]
        else:
            raise TemplateError(f"index: cannot index a {_kind(value)} with {format_value(key)!r}")
    return value


def _len(value: Any) -> int:
    if isinstance(value, str | list | tuple | Mapping):
        return len(value)
    raise TemplateError(f"len: a {_kind(value)} has no length")


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _from_json(text: Any) -> Any:
    if not isinstance(text, str):
        raise TemplateError(f"fromJson: expects a string, got a {_kind(text)}")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise TemplateError(f"fromJson: not valid JSON ({exc})") from None


def _quote(value: Any) -> str:
    return json.dumps(value if isinstance(value, str) else format_value(value), ensure_ascii=False)


_VERB = re.compile(r"%([-+# 0]*)(\d+)?(?:\.(\d+))?([a-zA-Z%])")


def _printf(pattern: Any, *args: Any) -> str:
    if not isinstance(pattern, str):
        raise TemplateError("printf: the format must be a string")
    remaining = list(args)

    def verb(match: re.Match[str]) -> str:
        flags, width, precision, letter = match.groups()
        if letter == "%":
            return "%"
        if not remaining:
            raise TemplateError(f"printf: missing argument for %{letter} in {pattern!r}")
        value = remaining.pop(0)
        spec = "%" + flags + (width or "") + (f".{precision}" if precision else "")
        if letter in "vs":
            return (spec + "s") % format_value(value)
        if letter == "q":
            return (spec + "s") % _quote(value)
        if letter == "t" and isinstance(value, bool):
            return (spec + "s") % format_value(value)
        if letter in "dx" and isinstance(value, int | float) and not isinstance(value, bool):
            if not float(value).is_integer():
                raise TemplateError(f"printf: %{letter} needs an integer, got {format_value(value)}")
            return (spec + letter) % int(value)
        if letter in "feg" and isinstance(value, int | float) and not isinstance(value, bool):
            return (spec + letter) % value
        raise TemplateError(f"printf: %{letter} cannot format a {_kind(value)}")

    text = _VERB.sub(verb, pattern)
    if remaining:
        raise TemplateError(f"printf: {len(remaining)} extra argument(s) for {pattern!r}")
    return text


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "json": _json,
    "fromJson": _from_json,
    "quote": _quote,
    "eq": _eq,
    "ne": _ne,
    "lt": _ordered("lt", lambda a, b: a < b),
    "le": _ordered("le", lambda a, b: a <= b),
    "gt": _ordered("gt", lambda a, b: a > b),
    "ge": _ordered("ge", lambda a, b: a >= b),
    "and": _and,
    "or": _or,
    "not": lambda value: not truthy(value),
    "index": _index,
    "printf": _printf,
    "len": _len,
}
"""The functions templates may call (Go's built-ins of the same names, and ToolHive's three)."""


def _call(name: str, args: list[Any]) -> Any:
    return FUNCTIONS[name](*args)
