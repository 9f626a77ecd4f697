"""The composite-tool workflow engine with fake step callers: graph order and parallelism (observed with
events, never timed), templates between steps, conditions, retries, timeouts and the failure policy."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import mcp_types as types
import pytest

from api.composite import CompositeToolConfig
from gateway.vmcp.composite import StepCallError, run_workflow

Handler = Callable[[dict[str, Any]], Awaitable[types.CallToolResult]]


def _tool(*steps: dict[str, Any], **extra: Any) -> CompositeToolConfig:
    return CompositeToolConfig.model_validate(
        {"name": "wf", "description": "d", "steps": list(steps), **extra}
    )


def text(value: str, *, error: bool = False) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=value)], is_error=error)


def _caller(handlers: dict[str, Handler], calls: list[tuple[str, dict[str, Any]]]) -> Any:
    async def call(tool: str, arguments: dict[str, Any]) -> types.CallToolResult:
        calls.append((tool, arguments))
        return await handlers[tool](arguments)

    return call


def _text_of(result: types.CallToolResult) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


async def test_independent_steps_run_together_and_the_dependent_one_reads_both() -> None:
    started = {"a": anyio.Event(), "b": anyio.Event()}

    def meets(me: str, other: str) -> Handler:
        async def handle(arguments: dict[str, Any]) -> types.CallToolResult:
            started[me].set()
            await started[other].wait()  # only returns if the other step runs at the same time
            return types.CallToolResult(content=[], structured_content={"value": arguments["v"]})

        return handle

    async def join(arguments: dict[str, Any]) -> types.CallToolResult:
        return text(f"joined {arguments['left']}+{arguments['right']}")

    calls: list[tuple[str, dict[str, Any]]] = []
    tool = _tool(
        {"id": "a", "tool": "be.a", "arguments": {"v": "{{.params.x}}"}},
        {"id": "b", "tool": "be.b", "arguments": {"v": 2}},
        {
            "id": "c",
            "tool": "be.join",
            "dependsOn": ["a", "b"],
            "arguments": {"left": "{{.steps.a.output.value}}", "right": "{{.steps.b.output.value}}"},
        },
        parameters={"type": "object", "properties": {"x": {"type": "string", "default": "one"}}},
    )
    with anyio.fail_after(5):
        result = await run_workflow(
            tool, {}, _caller({"be.a": meets("a", "b"), "be.b": meets("b", "a"), "be.join": join}, calls)
        )
    assert not result.is_error, _text_of(result)
    assert result.structured_content == {"text": "joined one+2"}  # the last step's output, as text
    assert json.loads(_text_of(result)) == {"text": "joined one+2"}
    assert calls[-1] == ("be.join", {"left": "one", "right": "2"})


async def test_output_block_builds_typed_values() -> None:
    async def count(arguments: dict[str, Any]) -> types.CallToolResult:
        return types.CallToolResult(content=[], structured_content={"n": 41, "tags": ["x"]})

    tool = _tool(
        {"id": "a", "tool": "count"},
        output={
            "properties": {
                "next": {"type": "integer", "value": "{{.steps.a.output.n}}"},
                "tags": {"type": "array", "value": "{{json .steps.a.output.tags}}"},
                "nested": {"type": "object", "properties": {"ok": {"type": "boolean", "value": "true"}}},
                "missing": {"type": "string", "value": "{{.steps.a.output.nope}}", "default": "n/a"},
            },
            "required": ["next"],
        },
    )
    result = await run_workflow(tool, None, _caller({"count": count}, []))
    assert result.structured_content == {"next": 41, "tags": ["x"], "nested": {"ok": True}, "missing": "n/a"}


async def test_abort_answers_a_tool_error_naming_the_step_and_skips_the_rest() -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    async def broken(arguments: dict[str, Any]) -> types.CallToolResult:
        return text("disk on fire", error=True)

    async def after(arguments: dict[str, Any]) -> types.CallToolResult:
        return text("should not run")

    tool = _tool(
        {"id": "boom", "tool": "be.broken"}, {"id": "later", "tool": "be.after", "dependsOn": ["boom"]}
    )
    result = await run_workflow(tool, {}, _caller({"be.broken": broken, "be.after": after}, calls))
    assert result.is_error
    assert _text_of(result) == "Workflow 'wf' failed: step 'boom' (tool 'be.broken') failed: disk on fire"
    assert [c[0] for c in calls] == ["be.broken"]


@pytest.mark.parametrize("how", ["step", "workflow"])
async def test_continue_uses_default_results_and_status(how: str) -> None:
    async def broken(arguments: dict[str, Any]) -> types.CallToolResult:
        raise StepCallError("backend 'be' unavailable")

    async def report(arguments: dict[str, Any]) -> types.CallToolResult:
        return text(arguments["message"])

    first: dict[str, Any] = {"id": "boom", "tool": "be.broken", "defaultResults": {"text": "fallback"}}
    extra: dict[str, Any] = {}
    if how == "step":
        first["onError"] = {"action": "continue"}
    else:
        extra["failureMode"] = "continue"
    tool = _tool(
        first,
        {
            "id": "report",
            "tool": "be.report",
            "dependsOn": ["boom"],
            "arguments": {
                "message": "{{.steps.boom.status}}: {{.steps.boom.output.text}} ({{.steps.boom.error}})"
            },
        },
        **extra,
    )
    result = await run_workflow(tool, {}, _caller({"be.broken": broken, "be.report": report}, []))
    assert not result.is_error
    assert result.structured_content == {"text": "failed: fallback (backend 'be' unavailable)"}


async def test_retries_back_off_then_succeed_or_give_up() -> None:
    attempts: list[int] = []
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    async def flaky(arguments: dict[str, Any]) -> types.CallToolResult:
        attempts.append(1)
        return text("ok") if len(attempts) == 3 else text("try again", error=True)

    tool = _tool(
        {"id": "a", "tool": "flaky", "onError": {"action": "retry", "retryCount": 3, "retryDelay": "2s"}}
    )
    result = await run_workflow(tool, {}, _caller({"flaky": flaky}, []), sleep=sleep)
    assert result.structured_content == {"text": "ok"}
    assert delays == [2.0, 4.0]

    attempts.clear()
    delays.clear()
    tool = _tool({"id": "a", "tool": "flaky", "onError": {"action": "abort", "maxRetries": 1}})
    result = await run_workflow(tool, {}, _caller({"flaky": flaky}, []), sleep=sleep)
    assert result.is_error
    assert _text_of(result).endswith("failed: try again (after 2 attempts)")
    assert delays == [1.0]


async def test_step_and_workflow_timeouts() -> None:
    async def hang(arguments: dict[str, Any]) -> types.CallToolResult:
        await anyio.sleep_forever()
        raise AssertionError

    tool = _tool({"id": "slow", "tool": "hang", "timeout": "50ms"})
    with anyio.fail_after(5):
        result = await run_workflow(tool, {}, _caller({"hang": hang}, []))
    assert _text_of(result) == "Workflow 'wf' failed: step 'slow' (tool 'hang') failed: timed out after 50ms"

    tool = _tool({"id": "slow", "tool": "hang"}, timeout="50ms")
    with anyio.fail_after(5):
        result = await run_workflow(tool, {}, _caller({"hang": hang}, []))
    assert result.is_error
    assert _text_of(result) == "Workflow 'wf' timed out after 50ms (steps still running: slow)"


async def test_conditions_skip_steps_with_their_default_results() -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    async def echo(arguments: dict[str, Any]) -> types.CallToolResult:
        return text(str(arguments.get("m", "ran")))

    tool = _tool(
        {"id": "maybe", "tool": "echo", "condition": "{{.params.go}}", "defaultResults": {"text": "skipped"}},
        {
            "id": "then",
            "tool": "echo",
            "dependsOn": ["maybe"],
            "arguments": {"m": "{{.steps.maybe.output.text}}"},
        },
    )
    result = await run_workflow(tool, {"go": False}, _caller({"echo": echo}, calls))
    assert result.structured_content == {"text": "skipped"}
    assert calls == [("echo", {"m": "skipped"})]

    bad = _tool({"id": "odd", "tool": "echo", "condition": "{{.params.word}}"})
    result = await run_workflow(bad, {"word": "maybe"}, _caller({"echo": echo}, []))
    assert _text_of(result).endswith("failed: condition must expand to true or false, got 'maybe'")


async def test_missing_required_argument_and_runtime_template_errors_are_tool_errors() -> None:
    async def echo(arguments: dict[str, Any]) -> types.CallToolResult:
        return text("x")

    tool = _tool(
        {"id": "a", "tool": "echo", "arguments": {"n": "{{(fromJson .params.raw).n}}"}},
        parameters={"type": "object", "properties": {"raw": {"type": "string"}}, "required": ["raw"]},
    )
    result = await run_workflow(tool, {}, _caller({"echo": echo}, []))
    assert _text_of(result) == "missing required argument(s) 'raw' of 'wf'"
    result = await run_workflow(tool, {"raw": "not json"}, _caller({"echo": echo}, []))
    assert result.is_error
    assert "step 'a' (tool 'echo') failed: arguments: fromJson: not valid JSON" in _text_of(result)


def _asking(*answers: types.ElicitResult) -> tuple[Any, list[tuple[str, dict[str, Any]]]]:
    asked: list[tuple[str, dict[str, Any]]] = []
    queue = list(answers)

    async def elicit(message: str, schema: dict[str, Any]) -> types.ElicitResult:
        asked.append((message, schema))
        return queue.pop(0)

    return elicit, asked


ASK: dict[str, Any] = {
    "id": "ask",
    "type": "elicitation",
    "message": "Deploy {{.params.app}}?",
    "schema": {"type": "object", "properties": {"env": {"type": "string"}}},
}
DEPLOY: dict[str, Any] = {
    "id": "deploy",
    "tool": "be.deploy",
    "dependsOn": ["ask"],
    "arguments": {"m": "{{.steps.ask.output.content.env}}"},
}


async def test_an_accepted_elicitation_feeds_the_next_step() -> None:
    async def deploy(arguments: dict[str, Any]) -> types.CallToolResult:
        return text(f"deployed to {arguments['m']}")

    elicit, asked = _asking(types.ElicitResult(action="accept", content={"env": "prod"}))
    result = await run_workflow(
        _tool(ASK, DEPLOY), {"app": "shop"}, _caller({"be.deploy": deploy}, []), elicit=elicit
    )
    assert result.structured_content == {"text": "deployed to prod"}
    assert asked == [("Deploy shop?", ASK["schema"])]


@pytest.mark.parametrize(
    ("answer", "handler", "expected"),
    [
        ("decline", None, "failed: the user chose decline"),
        ("cancel", {"action": "abort"}, "failed: the user chose cancel"),
        ("decline", {"action": "continue"}, "ran"),
        ("cancel", {"action": "skip_remaining"}, "skipped"),
    ],
)
async def test_decline_and_cancel_follow_their_handlers(answer: str, handler: Any, expected: str) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    async def deploy(arguments: dict[str, Any]) -> types.CallToolResult:
        return text("ran")

    ask = {**ASK, "onDecline": handler, "onCancel": handler}
    elicit, _ = _asking(types.ElicitResult(action=answer))  # type: ignore[arg-type]
    then = {"id": "deploy", "tool": "be.deploy", "dependsOn": ["ask"]}
    result = await run_workflow(
        _tool(ask, then), {"app": "x"}, _caller({"be.deploy": deploy}, calls), elicit=elicit
    )
    if expected.startswith("failed"):
        assert result.is_error
        assert _text_of(result) == f"Workflow 'wf' failed: step 'ask' (elicitation) {expected}"
    elif expected == "ran":
        assert result.structured_content == {"text": "ran"}
    else:
        assert calls == [] and result.structured_content == {"action": "cancel", "skipped": True}


async def test_an_elicitation_step_fails_clearly_when_the_client_cannot_be_asked() -> None:
    result = await run_workflow(_tool(ASK), {"app": "x"}, _caller({}, []))
    assert result.is_error
    assert (
        "step 'ask' (elicitation) failed: the client cannot be asked: it did not declare the elicitation"
        in (_text_of(result))
    )


@pytest.mark.parametrize("action", ["continue", "abort"])
async def test_for_each_calls_the_tool_per_item_in_parallel(action: str) -> None:
    both = anyio.Event()
    started: list[str] = []

    async def query(arguments: dict[str, Any]) -> types.CallToolResult:
        started.append(arguments["name"])
        if len(started) == 2:
            both.set()
        await both.wait()  # the first two items run at the same time (maxParallel 2)
        if arguments["name"] == "bad":
            return text("no such package", error=True)
        return types.CallToolResult(content=[], structured_content={"vulns": len(arguments["name"])})

    async def packages(arguments: dict[str, Any]) -> types.CallToolResult:
        return types.CallToolResult(
            content=[], structured_content={"packages": [{"n": "ab"}, {"n": "bad"}, {"n": "c"}]}
        )

    tool = _tool(
        {"id": "list", "tool": "oci.packages"},
        {
            "id": "each",
            "type": "forEach",
            "dependsOn": ["list"],
            "collection": "{{json .steps.list.output.packages}}",
            "itemVar": "pkg",
            "maxParallel": 2,
            "step": {"tool": "osv.query", "arguments": {"name": "{{.forEach.pkg.n}}"}},
            "onError": {"action": action},
        },
    )
    with anyio.fail_after(5):
        result = await run_workflow(tool, {}, _caller({"oci.packages": packages, "osv.query": query}, []))
    if action == "abort":
        assert result.is_error
        assert (
            _text_of(result)
            == "Workflow 'wf' failed: step 'each' (forEach) failed: item 1 failed: no such package"
        )
        return
    output = result.structured_content
    assert output is not None and (output["count"], output["completed"], output["failed"]) == (3, 2, 1)
    assert [(i["index"], i["status"], i["output"]) for i in output["iterations"]] == [
        (0, "completed", {"vulns": 2}),
        (1, "failed", None),
        (2, "completed", {"vulns": 1}),
    ]
    assert output["iterations"][1]["error"] == "no such package"


async def test_templates_read_hyphenated_steps_and_the_workflow_root_like_toolhive() -> None:
    async def fetch(arguments: dict[str, Any]) -> types.CallToolResult:
        return text("page")

    async def echo(arguments: dict[str, Any]) -> types.CallToolResult:
        return text(json.dumps(arguments))

    calls: list[tuple[str, dict[str, Any]]] = []
    tool = _tool(
        {"id": "step-1", "tool": "be.fetch"},
        {
            "id": "step-2",
            "tool": "be.echo",
            "dependsOn": ["step-1"],
            "arguments": {
                "got": '{{index .steps "step-1" "output" "text"}}',
                "done": "{{.workflow.step_count}} {{.workflow.status}}",
                "at": "{{.timestamp}}",
                "started": "{{.workflow.start_time}}",
                "id": "{{.workflow.id}}",
            },
        },
        output={"properties": {"status": {"type": "string", "value": "{{.workflow.status}}"}}},
    )
    result = await run_workflow(tool, None, _caller({"be.fetch": fetch, "be.echo": echo}, calls))
    assert not result.is_error, _text_of(result)
    sent = calls[-1][1]
    assert sent["got"] == "page" and sent["done"] == "1 running" and sent["at"] == "<no value>"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", sent["started"]) and len(sent["id"]) == 36
    assert result.structured_content == {"status": "completed"}
