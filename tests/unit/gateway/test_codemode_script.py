"""Code mode's pure parts: the tool's face, how a script is wrapped, how values and errors are shaped."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.vmcp.codemode.script import (
    EXECUTE_TOOL_SCRIPT,
    ToolCallFailedError,
    bindings,
    call_arguments,
    input_schema,
    plain,
    script_arguments,
    script_error,
    script_result,
    tool_description,
    tool_value,
    wrap,
)


def test_tool_names_become_identifiers_and_the_first_keeps_a_clashing_one() -> None:
    assert bindings(["github-fetch-prs", "1up", "ok_name", "github_fetch_prs", "parallel", "if"]) == {
        "github_fetch_prs": "github-fetch-prs",
        "_1up": "1up",
        "ok_name": "ok_name",
        "parallel_": "parallel",
        "if_": "if",
    }


def test_the_description_lists_the_callable_tools_with_short_descriptions() -> None:
    text = tool_description([("a-b", "x" * 100), ("echo", "Echo it.")])
    assert text.startswith("Execute a Starlark script")
    assert f'  - a_b (tool "a-b"): {"x" * 77}...' in text
    assert "  - echo: Echo it." in text
    assert "parallel([fn1, fn2, ...])" in text and 'call_tool("name", ...)' in text


def test_the_input_schema_requires_a_script_and_shows_an_example() -> None:
    schema = input_schema()
    assert schema["required"] == ["script"]
    assert set(schema["properties"]) == {"script", "data"}
    assert "parallel(" in schema["examples"][0]["script"]
    assert input_schema() is not schema  # callers may keep and change theirs


def test_the_script_is_a_function_body_so_a_top_level_return_gives_the_result() -> None:
    source, lines = wrap("x = 1\nreturn x")
    assert lines == 2
    assert source.startswith("def __main__():\n    x = 1\n    return x\n")
    assert source.rstrip().endswith("__main__()")
    assert "def parallel(fns):" in source


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        (None, "requires a non-empty 'script' string argument"),
        ({"script": "  "}, "requires a non-empty 'script' string argument"),
        ({"script": "return 1", "data": [1]}, "'data' argument must be an object, got list"),
        ({"script": "return 1", "data": {"add": 1}}, "'add' conflicts with a builtin or tool name"),
        ({"script": "return 1", "data": {"parallel": 1}}, "'parallel' conflicts with a builtin"),
        ({"script": "return 1", "data": {"a-b": 1}}, "'a-b' is not a usable variable name"),
        ({"script": "return 1", "data": {"__fork": 1}}, "'__fork' is not a usable variable name"),
    ],
)
def test_bad_arguments_say_what_to_send(arguments: dict[str, Any] | None, problem: str) -> None:
    answer = script_arguments(arguments, ["add"])
    assert isinstance(answer, str) and problem in answer


def test_good_arguments_give_the_script_and_its_data() -> None:
    assert script_arguments({"script": "return n", "data": {"n": 1}}, ["add"]) == ("return n", {"n": 1})
    assert script_arguments({"script": "return 1"}, []) == ("return 1", {})


def test_positional_arguments_arrive_as_arg0_arg1() -> None:
    assert call_arguments((1, "x"), {"k": True}) == {"arg0": 1, "arg1": "x", "k": True}


@pytest.mark.parametrize(
    ("result", "value"),
    [
        ({"structuredContent": {"result": 5}, "content": [{"type": "text", "text": "5"}]}, 5),
        ({"structuredContent": {"a": 1, "b": 2}}, {"a": 1, "b": 2}),
        ({"content": [{"type": "text", "text": '{"vulns": []}'}]}, {"vulns": []}),
        ({"content": [{"type": "text", "text": "plain words"}]}, "plain words"),
        ({"content": [{"type": "image", "data": "x"}, {"type": "text", "text": "2"}]}, 2),
        ({"content": []}, None),
    ],
)
def test_tool_results_become_values_as_toolhive_parses_them(result: dict[str, Any], value: Any) -> None:
    assert tool_value(result) == value


def test_a_tool_error_fails_the_call_with_its_text() -> None:
    with pytest.raises(ToolCallFailedError, match=r"^backend said no$"):
        tool_value({"isError": True, "content": [{"type": "text", "text": "backend said no"}]})
    with pytest.raises(ToolCallFailedError, match=r"^tool execution error$"):
        tool_value({"isError": True, "content": []})


def test_script_values_become_json_data() -> None:
    assert plain({1: (1, 2), "k": {None}, "s": "x"}) == {"1": [1, 2], "k": [None], "s": "x"}


def test_the_result_is_the_values_json_then_the_scripts_print_output() -> None:
    result = script_result({"checked": 2, "names": ["é"]}, ["one", "two"])
    assert result["isError"] is False
    first, logs = result["content"]
    assert json.loads(first["text"]) == {"checked": 2, "names": ["é"]}
    assert first["text"] == '{"checked":2,"names":["é"]}'
    assert logs["text"] == "Script logs:\none\ntwo"
    assert script_result(None, [])["content"] == [{"type": "text", "text": "null"}]


def test_errors_name_the_scripts_own_line_and_its_callers() -> None:
    # what the interpreter says for a failure at wrapped line 3 called from wrapped line 6
    message = (
        "Traceback (most recent call last):\n"
        "  * script.star:12, in <module>\n      __main__()\n"
        "  * script.star:6, in __main__\n      return f()\n"
        "  * script.star:3, in f\n      return x['nope']\n"
        'error: Key `"nope"` was not found\n --> script.star:3:12\n'
    )
    assert (
        script_error(message, 8) == 'script failed at line 2 (called from line 5): Key `"nope"` was not found'
    )
    parse = "error: Parse error: unexpected new line\n --> script.star:3:9\n  |\n"
    assert (
        script_error(parse, 4, syntax=True)
        == "syntax error at line 2, column 5: Parse error: unexpected new line"
    )
    tool = "error: ToolCallFailedError: tool 'x': Unauthorized\n --> script.star:2:5\n"
    assert script_error(tool, 1) == "script failed at line 1: tool 'x': Unauthorized"
    assert script_error("error: out of luck", 1) == "script failed: out of luck"
    assert EXECUTE_TOOL_SCRIPT == "execute_tool_script"
