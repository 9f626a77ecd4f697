"""Code mode's interpreter run in-process (:class:`gateway.vmcp.codemode.worker.Evaluation`) with a
recorded stand-in for the gateway's calls: builtins, ``parallel`` by replay, and the limits."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.vmcp.codemode.script import Limits, ToolCallFailedError, bindings, wrap
from gateway.vmcp.codemode.worker import Evaluation, Script, ScriptError


class Calls:
    """Answers a script's tool calls: ``add`` adds, ``deny`` refuses, anything else echoes; records each."""

    def __init__(self) -> None:
        self.made: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()

    def __call__(self, name: str, arguments: dict[str, Any]) -> Any:
        with self.lock:
            self.made.append((name, arguments))
        if name == "deny":
            raise ToolCallFailedError("tool 'deny': Unauthorized")
        if name == "add":
            return arguments.get("a", 0) + arguments.get("b", 0)
        return {"tool": name, "arguments": arguments}


def run(source: str, calls: Calls | None = None, data: dict[str, Any] | None = None, **limits: Any) -> Any:
    wrapped, lines = wrap(source)
    script = Script(
        wrapped, lines, bindings(["add", "echo-it", "deny"]), data or {}, Limits(**limits), calls or Calls()
    )
    return Evaluation(script, script.limits.step_limit).run()


def failure(source: str, calls: Calls | None = None, **limits: Any) -> str:
    with pytest.raises(ScriptError) as caught:
        run(source, calls, **limits)
    return str(caught.value)


def test_tools_are_functions_with_keyword_and_positional_arguments() -> None:
    calls = Calls()
    assert run('return [add(a=1, b=2), echo_it("x", k=True), call_tool("echo-it", n=1)]', calls) == [
        3,
        {"tool": "echo-it", "arguments": {"arg0": "x", "k": True}},
        {"tool": "echo-it", "arguments": {"n": 1}},
    ]
    assert calls.made[0] == ("add", {"a": 1, "b": 2})


def test_data_arguments_are_variables_and_a_script_without_return_gives_none() -> None:
    assert run("return [d['name'] for d in deps]", data={"deps": [{"name": "a"}, {"name": "b"}]}) == [
        "a",
        "b",
    ]
    assert run("x = 1") is None


def test_parallel_returns_results_in_order_and_calls_each_tool_once() -> None:
    calls = Calls()
    script = "base = add(a=1)\nreturn parallel([lambda i=i: add(a=base, b=i) for i in range(5)])"
    assert run(script, calls, parallel_max=2) == [1, 2, 3, 4, 5]
    # the call before parallel() is replayed from the record in each branch, never repeated
    assert sorted(c[1].get("b", -1) for c in calls.made) == [-1, 0, 1, 2, 3, 4]


def test_nested_parallel_and_logs_in_order() -> None:
    script = """
def pair(i):
    print("pair", i)
    return parallel([lambda: add(a=i), lambda: add(a=i, b=10)])
print("start")
out = parallel([lambda: pair(1), lambda: pair(2)])
print("end")
return out
"""
    wrapped, lines = wrap(script)
    state = Script(wrapped, lines, bindings(["add"]), {}, Limits(), Calls())
    evaluation = Evaluation(state, 100_000)
    assert evaluation.run() == [[1, 11], [2, 12]]
    assert evaluation.logs == ["start", "pair 1", "pair 2", "end"]


def test_a_failing_branch_fails_the_script_naming_branch_and_lines() -> None:
    message = failure("x = 1\nreturn parallel([lambda: add(a=1), lambda: call_tool('deny')])")
    assert (
        message == "script failed at line 2: parallel() branch 1: failed at line 2: tool 'deny': Unauthorized"
    )
    message = failure("return parallel([1])")
    assert message.startswith("script failed at line 1: parallel() branch 0:")
    assert "parallel() takes a list of zero-argument callables, got int" in failure("return parallel(7)")


def test_a_denied_call_fails_at_its_line() -> None:
    assert failure("a = 1\n\nb = call_tool('deny')") == "script failed at line 3: tool 'deny': Unauthorized"


def test_the_step_limit_stops_a_long_loop_and_parallel_divides_it() -> None:
    assert failure("for i in range(10000000):\n    pass", step_limit=5000) == (
        "script failed at line 1: step limit exceeded (5000 steps)"
    )
    # each of 4 branches gets a quarter of 40000 steps: 20000 loop steps are too many for one
    branch = "lambda: len([i for i in range(20000)])"
    assert "step limit exceeded (10000 steps)" in failure(
        f"return parallel([{branch}] * 4)", step_limit=40000
    )
    assert run(f"return parallel([{branch}] * 4)", step_limit=400000) == [20000] * 4


def test_recursion_ends_at_the_call_depth_limit() -> None:
    assert "call stack overflow" in failure("def f(n):\n    return f(n + 1)\nreturn f(0)")


def test_syntax_errors_and_no_load() -> None:
    assert failure("x = [1\nreturn x").startswith("syntax error at line 2")
    assert "`load` must only occur at the top of a module" in failure('load("other.star", "x")\nreturn x')
    assert "cannot be called from a script" in failure('return call_tool("execute_tool_script", script="1")')


_WORDS = ["return ", "for ", " in ", "lambda ", "parallel(", "add(", "def ", "if "]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.sampled_from([*"abfrn=+-*/%()[]{}:,.\"'\n 0123456789_", *_WORDS]), max_size=40).map("".join)
)
def test_any_script_ends_in_a_value_or_a_script_error(source: str) -> None:
    """Whatever the text: a value, or a ScriptError whose message names a line or says what failed."""
    try:
        run(source, step_limit=5000)
    except ScriptError as exc:
        assert str(exc).startswith(("script failed", "syntax error at line")), str(exc)
