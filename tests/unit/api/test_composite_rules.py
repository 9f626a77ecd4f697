"""Validation of composite tools: each problem names the step's field and says the fix."""

from __future__ import annotations

from typing import Any

import pytest

from api.composite import CompositeToolConfig
from api.composite_rules import composite_tool_notices, composite_tool_problems, composite_tools_problems
from api.validation import parse_and_validate


def _tool(*steps: dict[str, Any], **extra: Any) -> CompositeToolConfig:
    return CompositeToolConfig.model_validate(
        {"name": "wf", "description": "d", "steps": list(steps), **extra}
    )


def _problems(tool: CompositeToolConfig) -> list[str]:
    return [str(p) for p in composite_tool_problems(tool, "spec")]


def test_a_valid_diamond_has_no_problem() -> None:
    tool = _tool(
        {"id": "a", "tool": "fixture.add", "arguments": {"a": "{{.params.x}}", "b": 1}},
        {"id": "b", "tool": "everything.get-sum", "arguments": {"a": 1, "b": 2}},
        {
            "id": "c",
            "tool": "everything_echo",
            "dependsOn": ["a", "b"],
            "arguments": {"message": "{{.steps.a.output.result}} {{.steps.b.output.text}}"},
            "timeout": "30s",
            "onError": {"action": "retry", "retryCount": 2, "retryDelay": "500ms"},
        },
        parameters={"type": "object", "properties": {"x": {"type": "integer"}}},
        timeout="2m",
        output={"properties": {"sum": {"type": "integer", "value": "{{.steps.a.output.result}}"}}},
    )
    assert _problems(tool) == []


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        (
            [{"id": "a", "tool": "t"}, {"id": "a", "tool": "t"}],
            "spec.steps[1].id: step 'a' is defined twice (also steps[0])",
        ),
        (
            [{"id": "a", "tool": "t", "dependsOn": ["nope"]}],
            "spec.steps[0].dependsOn[0]: step 'a' depends on unknown step 'nope'",
        ),
        (
            [{"id": "a", "tool": "t", "dependsOn": ["b"]}, {"id": "b", "tool": "t", "dependsOn": ["a"]}],
            "spec.steps[0].dependsOn: step dependency cycle: 'a' -> 'b' -> 'a'",
        ),
        (
            [
                {"id": "a", "tool": "t"},
                {"id": "b", "tool": "t", "arguments": {"x": "{{.steps.a.output.text}}"}},
            ],
            "spec.steps[1].arguments.x: step 'b': .steps.a.output.text reads step 'a', which is not among "
            "its dependencies",
        ),
        (
            [{"id": "a", "tool": "t", "arguments": {"x": "{{.steps.zzz.output}}"}}],
            "spec.steps[0].arguments.x: step 'a': .steps.zzz.output names unknown step 'zzz'",
        ),
        (
            [{"id": "a", "tool": "t", "arguments": {"x": "{{if .params.y}}1{{end}}"}}],
            "spec.steps[0].arguments.x: step 'a': {{if}} is not supported",
        ),
        ([{"id": "a", "tool": "bad tool!"}], "spec.steps[0].tool: step 'a': 'bad tool!' is not a tool name"),
        ([{"id": "a"}], "spec.steps[0].tool: step 'a': set the tool to call"),
        ([{"id": "a", "tool": "t", "timeout": "soon"}], "spec.steps[0].timeout: 'soon' is not a duration"),
        (
            [{"id": "a", "tool": "t", "onError": {"action": "retry"}}],
            "spec.steps[0].onError.retryCount: step 'a': action retry needs retryCount of at least 1",
        ),
        (
            [{"id": "a", "tool": "t", "onError": {"action": "retry", "retryCount": 2, "maxRetries": 3}}],
            "spec.steps[0].onError.maxRetries: step 'a': maxRetries is another name of retryCount",
        ),
        (
            [{"id": "a", "tool": "t", "onError": {"action": "retry", "retryCount": 11}}],
            "spec.steps[0].onError.retryCount: step 'a': 11 retries; at most 10",
        ),
        (
            [{"id": "ask", "type": "elicitation"}],
            "spec.steps[0].message: step 'ask': an elicitation step needs the question",
        ),
        (
            [
                {
                    "id": "ask",
                    "type": "elicitation",
                    "message": "Go?",
                    "tool": "t",
                    "schema": {"type": "string"},
                }
            ],
            "spec.steps[0].schema.type: step 'ask': the answer's schema must be type object",
        ),
        (
            [{"id": "ask", "type": "elicitation", "message": "Go?", "tool": "t"}],
            "spec.steps[0].tool: step 'ask': not used by a step of type elicitation",
        ),
        (
            [{"id": "each", "type": "forEach", "collection": "{{.params.x}}"}],
            "spec.steps[0].step: step 'each': set the step run per item",
        ),
        (
            [
                {
                    "id": "each",
                    "type": "forEach",
                    "collection": "[]",
                    "itemVar": "index",
                    "step": {"tool": "a.b"},
                }
            ],
            "spec.steps[0].itemVar: step 'each': an identifier other than 'index'",
        ),
        (
            [{"id": "a", "tool": "t", "arguments": {"x": "{{.forEach.item}}"}}],
            "spec.steps[0].arguments.x: step 'a': .forEach.item is not available",
        ),
        (
            [{"id": "a", "tool": "t", "message": "hi"}],
            "spec.steps[0].message: step 'a': not used by a step of type tool",
        ),
        (
            [
                {"id": "ask", "type": "elicitation", "message": "Really {{.steps.b.output.text}}?"},
                {"id": "b", "tool": "t"},
            ],
            "spec.steps[0].message: step 'ask': .steps.b.output.text reads step 'b', which is not among",
        ),
        (
            [
                {"id": "a", "tool": "t", "onError": {"action": "continue"}},
                {"id": "b", "tool": "t", "dependsOn": ["a"], "arguments": {"x": "{{.steps.a.output.text}}"}},
            ],
            "spec.steps[1].arguments.x: step 'b': .steps.a.output.text reads step 'a', which may be skipped "
            "or fail without stopping the workflow; give 'a' defaultResults.text",
        ),
    ],
)
def test_problems_name_the_step_and_the_fix(steps: list[dict[str, Any]], expected: str) -> None:
    problems = _problems(_tool(*steps))
    assert any(p.startswith(expected) for p in problems), problems


def test_an_elicitation_step_feeds_later_steps() -> None:
    tool = _tool(
        {
            "id": "ask",
            "type": "elicitation",
            "message": "Which environment for {{.params.app}}?",
            "schema": {"type": "object", "properties": {"env": {"type": "string"}}, "required": ["env"]},
            "onDecline": {"action": "skip_remaining"},
            "onCancel": {"action": "abort"},
            "timeout": "2m",
        },
        {
            "id": "go",
            "tool": "deploy.run",
            "dependsOn": ["ask"],
            "arguments": {"env": "{{.steps.ask.output.content.env}}"},
        },
    )
    assert _problems(tool) == []


def test_a_for_each_step_reads_its_item_and_earlier_steps() -> None:
    images = {"id": "images", "tool": "registry.list"}
    scan = {
        "id": "scan",
        "type": "forEach",
        "collection": "{{json .steps.images.output.tags}}",
        "dependsOn": ["images"],
        "maxIterations": 500,
        "step": {"tool": "scanner.scan", "arguments": {"ref": "{{.forEach.item}}@{{.forEach.index}}"}},
    }
    tool = _tool(images, {**scan, "onError": {"action": "continue"}})
    assert _problems(tool) == []


def test_transitive_dependencies_are_visible_and_default_results_satisfy_skippable_reads() -> None:
    tool = _tool(
        {"id": "a", "tool": "t", "condition": "{{.params.go}}", "defaultResults": {"text": "skipped"}},
        {"id": "b", "tool": "t", "dependsOn": ["a"]},
        {"id": "c", "tool": "t", "dependsOn": ["b"], "arguments": {"x": "{{.steps.a.output.text}}"}},
    )
    assert _problems(tool) == []


def test_workflow_level_checks() -> None:
    tool = _tool(
        {"id": "a", "tool": "t"},
        parameters={"type": "string"},
        timeout="0s",
        output={"properties": {"x": {"type": "string"}}, "required": ["y"]},
    )
    assert _problems(tool) == [
        "spec.parameters.type: must be 'object' (parameters is a JSON Schema of the arguments)",
        "spec.timeout: '0s' is not a duration above zero; write e.g. 30s, 500ms or 2m",
        "spec.output.properties.x: set value (a template), or properties for an object",
        "spec.output.required: 'y' is not in output.properties",
    ]


def test_two_inline_tools_of_one_name_are_refused() -> None:
    tools = [_tool({"id": "a", "tool": "t"}), _tool({"id": "a", "tool": "t"})]
    problems = [str(p) for p in composite_tools_problems(tools, "spec.config.compositeTools")]
    assert "spec.config.compositeTools[1].name: 'wf' is used by several composite tools" in problems


def test_the_kind_and_the_inline_field_run_the_same_rules() -> None:
    step = {"id": "a", "tool": "t", "dependsOn": ["a"]}
    definition = {
        "apiVersion": "mcp-operator.dev/v1beta1",
        "kind": "VirtualMCPCompositeToolDefinition",
        "metadata": {"name": "wf"},
        "spec": {"name": "wf", "description": "d", "steps": [step]},
    }
    _, problems = parse_and_validate(definition)
    assert [str(p) for p in problems] == ["spec.steps[0].dependsOn[0]: step 'a' depends on itself; remove it"]
    server = {
        "apiVersion": "mcp-operator.dev/v1beta1",
        "kind": "VirtualMCPServer",
        "metadata": {"name": "gw"},
        "spec": {
            "groupRef": {"name": "g"},
            "incomingAuth": {"type": "anonymous"},
            "config": {
                "compositeTools": [definition["spec"]],
                "compositeToolRefs": [{"name": "x"}, {"name": "x"}],
            },
        },
    }
    _, problems = parse_and_validate(server)
    assert [str(p) for p in problems] == [
        "spec.config.compositeToolRefs: 'x' is listed 2 times",
        "spec.config.compositeTools[0].steps[0].dependsOn[0]: step 'a' depends on itself; remove it",
    ]


def test_a_hyphenated_step_id_is_read_through_index_and_the_graph_is_still_checked() -> None:
    first = {"id": "step-1", "tool": "be.fetch"}
    reads = '{{index .steps "step-1" "output" "text"}}'
    assert (
        _problems(
            _tool(first, {"id": "step-2", "tool": "be.b", "dependsOn": ["step-1"], "arguments": {"x": reads}})
        )
        == []
    )
    unordered = _problems(_tool(first, {"id": "step-2", "tool": "be.b", "arguments": {"x": reads}}))
    assert any("reads step 'step-1', which is not among its dependencies" in p for p in unordered), unordered
    dotted = _problems(
        _tool(
            {"id": "fetch-data", "tool": "be.a"},
            {"id": "b", "tool": "be.b", "arguments": {"x": "{{.steps.fetch}}"}},
        )
    )
    assert any('is read as index .steps "fetch-data"' in p for p in dotted), dotted
    assert any(
        "use letters, digits, '_' and '-'" in p for p in _problems(_tool({"id": "a b", "tool": "be.a"}))
    )


def test_an_unknown_template_root_is_accepted_as_in_toolhive_and_noticed() -> None:
    tool = _tool(
        {
            "id": "a",
            "tool": "be.a",
            "arguments": {"at": "{{.timestamp}}", "run": "{{.workflow.id}} {{.vars}}"},
        },
        output={"properties": {"when": {"type": "string", "value": "{{.now}}"}}},
    )
    assert _problems(tool) == []
    found = [str(p) for p in composite_tool_notices(tool, "spec")]
    assert found == [
        "spec.steps[0].arguments.at: step 'a': .timestamp is not a template root, so it renders as "
        "<no value> (as in ToolHive, whose roots are .params, .steps, .vars and .workflow); "
        "for the workflow's start time write .workflow.start_time",
        "spec.output.properties.when.value: output: .now is not a template root, so it renders as <no value> "
        "(as in ToolHive, whose roots are .params, .steps, .vars and .workflow); for the workflow's start "
        "time write .workflow.start_time",
    ]
