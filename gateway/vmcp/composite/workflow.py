"""The workflow engine of composite tools: steps as a graph, templates, conditions, timeouts, retries.

Every step starts as soon as the steps it ``dependsOn`` have finished (independent steps run in
parallel, at most :data:`MAX_PARALLEL` at once). A step's tool is called through a :data:`StepCall` (in
the gateway: the same routing, request policy, health and circuit breaker as a client's call). A step
that fails (an error, ``isError: true``, a timeout, a template that cannot be evaluated) is retried
``retryCount`` times, ``retryDelay`` apart (doubled each time, at most 60 times the first delay); then
``abort`` ends the workflow with a tool result ``isError: true`` naming the step, and ``continue`` goes on
with the step's ``defaultResults`` as its output. Any failure answers a tool result, never a protocol
error. The workflow's ``timeout`` bounds everything.
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import anyio
import anyio.abc
import mcp_types as types

from api.composite import (
    DEFAULT_STEP_TIMEOUT,
    DEFAULT_WORKFLOW_TIMEOUT,
    CompositeToolConfig,
    WorkflowStepConfig,
)
from api.composite_rules import effective_action, inner_step, retry_count
from api.durations import parse_duration
from api.workflow_templates import Template, TemplateError, parse_template

from .output import OutputError, build_output, step_output

__all__ = ["MAX_PARALLEL", "Elicit", "StepCall", "StepCallError", "StepResult", "run_workflow"]

MAX_PARALLEL = 10
"""Steps of one call running at once, and items of a forEach step by default (ToolHive's default)."""
DEFAULT_FOR_EACH_ITERATIONS = 100
_MAX_DELAY_FACTOR = 60

StepCall = Callable[[str, dict[str, Any]], Awaitable[types.CallToolResult]]
"""Calls a step's ``tool`` (as written in the step) with the expanded arguments."""
Elicit = Callable[[str, dict[str, Any]], Awaitable[types.ElicitResult]]
"""Asks the front client's user (message, requested schema): ``elicitation/create`` on its session."""
NO_ELICITATION = (
    "the client cannot be asked: it did not declare the elicitation capability, or it speaks the "
    "2026-07-28 protocol, where the gateway cannot ask during a call"
)


class StepCallError(Exception):
    """The step's tool could not be called (unknown, unavailable): a failure of the step."""


@dataclass
class StepResult:
    """What templates read as ``.steps.<id>``."""

    status: Literal["completed", "failed", "skipped"]
    output: dict[str, Any] | None = None
    error: str | None = None

    def as_context(self) -> dict[str, Any]:
        return {"status": self.status, "output": self.output, "error": self.error}


@functools.lru_cache(maxsize=1024)
def _template(text: str) -> Template:
    return parse_template(text)


def _expand(value: Any, context: Mapping[str, Any]) -> Any:
    """Every string inside ``value`` rendered as a template (other values as they are)."""
    if isinstance(value, str):
        return _template(value).render(context)
    if isinstance(value, dict):
        return {key: _expand(item, context) for key, item in value.items()}
    if isinstance(value, list):
        return [_expand(item, context) for item in value]
    return value


def with_defaults(tool: CompositeToolConfig, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
    """The call's arguments plus the ``default`` of every absent parameter; raises ValueError naming a
    missing required one."""
    params = dict(arguments or {})
    schema = tool.parameters or {}
    for name, prop in (schema.get("properties") or {}).items():
        if name not in params and isinstance(prop, dict) and "default" in prop:
            params[name] = prop["default"]
    missing = [name for name in schema.get("required") or [] if name not in params]
    if missing:
        raise ValueError(f"missing required argument(s) {', '.join(map(repr, missing))} of {tool.name!r}")
    return params


def _error_result(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=message)], is_error=True)


@dataclass
class _Run:
    """One call of a composite tool."""

    tool: CompositeToolConfig
    params: dict[str, Any]
    call: StepCall
    sleep: Callable[[float], Awaitable[None]]
    elicit: Elicit | None = None
    results: dict[str, StepResult] = field(default_factory=dict)
    finished: list[str] = field(default_factory=list)
    """Step ids in the order they finished."""
    running: set[str] = field(default_factory=set)
    abort: str | None = None
    skip_remaining: bool = False
    """An elicitation answered ``skip_remaining``: steps not started yet are skipped."""
    workflow_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    started_clock: float = field(default_factory=time.monotonic)
    status: str = "running"
    """``.workflow.status``: ``running`` while steps run, ``completed`` when the output is built."""

    def context(self) -> dict[str, Any]:
        """The template roots, ToolHive's: ``.params``, ``.steps``, ``.vars`` (always empty: nothing sets
        workflow variables) and ``.workflow``; any other root reads as Go's ``<no value>``."""
        completed = sum(1 for r in self.results.values() if r.status == "completed")
        workflow = {
            "id": self.workflow_id,
            "start_time": self.started.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "step_count": completed,
            "status": self.status,
            "duration_ms": int((time.monotonic() - self.started_clock) * 1000),
        }
        steps = {k: r.as_context() for k, r in self.results.items()}
        return {"params": self.params, "steps": steps, "vars": {}, "workflow": workflow}

    async def run_step(
        self, step: WorkflowStepConfig, done: Mapping[str, anyio.Event], limit: anyio.CapacityLimiter
    ) -> None:
        for dep in step.depends_on or []:
            await done[dep].wait()
        async with limit:
            self.running.add(step.id)
            if self.skip_remaining:
                result = StepResult("skipped", output=step.default_results)
            else:
                result = await self.execute(step)  # cancelled by the deadline: still listed as running
            self.running.discard(step.id)
        self.results[step.id] = result
        self.finished.append(step.id)
        done[step.id].set()
        if result.status == "failed" and effective_action(step, self.tool) == "abort" and self.abort is None:
            tool = f" (tool {step.tool!r})" if step.tool else f" ({step.type})"
            self.abort = f"step {step.id!r}{tool} failed: {result.error}"

    async def execute(self, step: WorkflowStepConfig) -> StepResult:
        if step.condition is not None:
            try:
                verdict = _template(step.condition).render(self.context()).strip().lower()
            except TemplateError as exc:
                return self.failed(step, f"condition: {exc}")
            if verdict not in ("true", "false"):
                return self.failed(step, f"condition must expand to true or false, got {verdict!r}")
            if verdict == "false":
                return StepResult("skipped", output=step.default_results)
        if step.type == "elicitation":
            return await self.ask(step)
        if step.type == "forEach":
            return await self.for_each(step)
        try:
            arguments = _expand(step.arguments or {}, self.context())
        except TemplateError as exc:
            return self.failed(step, f"arguments: {exc}")
        return await self.call_with_retries(step, arguments)

    async def for_each(self, step: WorkflowStepConfig) -> StepResult:
        """Call the inner step's tool once per item of ``collection`` (at most ``maxParallel`` at once);
        each failed item is retried as ``onError`` says. The output is ``{iterations: [{index, item, status,
        output, error}], count, completed, failed}``; a failed item fails the step unless ``onError``
        (or ``failureMode``) is ``continue``."""
        try:
            items = json.loads(_template(step.collection or "").render(self.context()))
        except (TemplateError, ValueError) as exc:
            return self.failed(step, f"collection: {exc}")
        if not isinstance(items, list):
            return self.failed(step, f"collection must expand to a JSON array, got a {type(items).__name__}")
        cap = step.max_iterations or DEFAULT_FOR_EACH_ITERATIONS
        if len(items) > cap:
            return self.failed(step, f"collection has {len(items)} items; maxIterations is {cap}")
        inner = inner_step(step)
        assert inner is not None, "validated: a forEach step has a tool step"
        call = inner.model_copy(update={"on_error": step.on_error, "timeout": step.timeout})
        iterations: list[dict[str, Any]] = [{} for _ in items]
        limit = anyio.CapacityLimiter(step.max_parallel or MAX_PARALLEL)

        async def one(index: int, item: Any) -> None:
            async with limit:
                scope = {**self.context(), "forEach": {step.item_var or "item": item, "index": index}}
                try:
                    result = await self.call_with_retries(call, _expand(inner.arguments or {}, scope))
                except TemplateError as exc:
                    result = StepResult("failed", error=f"arguments: {exc}")
                entry = {"index": index, "item": item, "status": result.status, "output": result.output}
                iterations[index] = {**entry, "error": result.error}

        async with anyio.create_task_group() as tg:
            for index, item in enumerate(items):
                tg.start_soon(one, index, item)
        failed = [it for it in iterations if it["status"] == "failed"]
        if failed and effective_action(step, self.tool) == "abort":
            return self.failed(step, f"item {failed[0]['index']} failed: {failed[0]['error']}")
        output = {"iterations": iterations, "count": len(items), "completed": len(items) - len(failed)}
        return StepResult("completed", output={**output, "failed": len(failed)})

    async def ask(self, step: WorkflowStepConfig) -> StepResult:
        """An elicitation step: ``accept`` gives ``{action, content}``; decline and cancel (or no answer
        within the step's timeout) follow ``onDecline`` / ``onCancel`` (``abort`` by default)."""
        if self.elicit is None:
            return self.failed(step, NO_ELICITATION)
        try:
            message = _template(step.message or "").render(self.context())
        except TemplateError as exc:
            return self.failed(step, f"message: {exc}")
        schema = step.schema_ or {"type": "object", "properties": {}}
        try:
            with anyio.fail_after(parse_duration(step.timeout or DEFAULT_STEP_TIMEOUT)):
                answer = await self.elicit(message, schema)
            action: str = answer.action
        except TimeoutError:
            action = "cancel"
        except Exception as exc:  # boundary: the client's answer or its session failed
            return self.failed(step, f"asking the user failed: {exc}")
        if action == "accept":
            return StepResult("completed", output={"action": "accept", "content": answer.content or {}})
        handler = step.on_decline if action == "decline" else step.on_cancel
        then = handler.action if handler is not None and handler.action else "abort"
        if then == "abort":
            return self.failed(step, f"the user chose {action}")
        self.skip_remaining = self.skip_remaining or then == "skip_remaining"
        return StepResult("completed", output={"action": action, "skipped": then == "skip_remaining"})

    async def call_with_retries(self, step: WorkflowStepConfig, arguments: dict[str, Any]) -> StepResult:
        timeout = parse_duration(step.timeout or DEFAULT_STEP_TIMEOUT)
        first_delay = (
            parse_duration(step.on_error.retry_delay) if step.on_error and step.on_error.retry_delay else 1.0
        )
        delay, attempts = first_delay, retry_count(step) + 1
        error = ""
        for attempt in range(attempts):
            if attempt:  # the step's own retryDelay (ToolHive's field), doubled per attempt
                await self.sleep(delay)
                delay = min(delay * 2, first_delay * _MAX_DELAY_FACTOR)
            try:
                with anyio.fail_after(timeout):
                    result = await self.call(step.tool or "", arguments)
            except TimeoutError:
                error = f"timed out after {step.timeout or DEFAULT_STEP_TIMEOUT}"
                continue
            except StepCallError as exc:
                error = str(exc)
                continue
            if not result.is_error:
                return StepResult("completed", output=step_output(result))
            error = _error_text(result)
        if attempts > 1:
            error = f"{error} (after {attempts} attempts)"
        return self.failed(step, error)

    def failed(self, step: WorkflowStepConfig, error: str) -> StepResult:
        continues = effective_action(step, self.tool) == "continue"
        return StepResult("failed", output=step.default_results if continues else None, error=error)


def _error_text(result: types.CallToolResult) -> str:
    texts = [c.text for c in result.content if isinstance(c, types.TextContent) and c.text]
    if texts:
        return "; ".join(texts)
    structured = result.structured_content or {}
    for key in ("error", "message", "text"):
        if isinstance(structured.get(key), str):
            return str(structured[key])
    return "the tool reported an error"


async def run_workflow(
    tool: CompositeToolConfig,
    arguments: Mapping[str, Any] | None,
    call: StepCall,
    *,
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    elicit: Elicit | None = None,
) -> types.CallToolResult:
    """Run ``tool`` with the client's ``arguments`` (``elicit`` asks its user, when it can be asked); the
    answer is always a tool result."""
    try:
        params = with_defaults(tool, arguments)
    except ValueError as exc:
        return _error_result(str(exc))
    run = _Run(tool, params, call, sleep, elicit)
    done = {step.id: anyio.Event() for step in tool.steps}
    limit = anyio.CapacityLimiter(MAX_PARALLEL)
    timeout = tool.timeout or DEFAULT_WORKFLOW_TIMEOUT
    with anyio.move_on_after(parse_duration(timeout)) as deadline:
        async with anyio.create_task_group() as tg:
            for step in tool.steps:
                tg.start_soon(_step_or_abort, run, step, done, limit, tg)
    if run.abort is not None:
        return _error_result(f"Workflow {tool.name!r} failed: {run.abort}")
    if deadline.cancelled_caught:
        running = ", ".join(sorted(run.running)) or "none"
        return _error_result(
            f"Workflow {tool.name!r} timed out after {timeout} (steps still running: {running})"
        )
    return _result(run)


async def _step_or_abort(
    run: _Run,
    step: WorkflowStepConfig,
    done: Mapping[str, anyio.Event],
    limit: anyio.CapacityLimiter,
    tg: anyio.abc.TaskGroup,
) -> None:
    await run.run_step(step, done, limit)
    if run.abort is not None:
        tg.cancel_scope.cancel()


def _result(run: _Run) -> types.CallToolResult:
    run.status = "completed"
    if run.tool.output is not None:
        try:
            output = build_output(run.tool.output, run.context())
        except OutputError as exc:
            return _error_result(f"Workflow {run.tool.name!r} failed: {exc}")
    else:
        completed = [s for s in run.finished if run.results[s].status == "completed"]
        output = run.results[completed[-1]].output or {} if completed else {}
    text = json.dumps(output, ensure_ascii=False, separators=(",", ":"))
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)], structured_content=output
    )
