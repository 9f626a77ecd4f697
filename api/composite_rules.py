"""The rules of a composite tool beyond its schema: the step graph, the templates, durations, retries.

Pure: :func:`composite_tool_problems` returns Problems whose field names the step (``...steps[2]``, the
step's id in the message) and says the fix. Used for the VirtualMCPCompositeToolDefinition kind, the
VirtualMCPServer's inline ``compositeTools`` and the gateway's config file alike.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import ValidationError

from api.composite import CompositeToolConfig, OutputProperty, WorkflowStepConfig
from api.durations import parse_duration
from api.problems import Problem
from api.workflow_templates import TemplateError, parse_template

__all__ = [
    "MAX_RETRIES",
    "MAX_STEPS",
    "TOOL_REFERENCE",
    "composite_tool_notices",
    "composite_tool_problems",
    "composite_tools_problems",
    "effective_action",
    "inner_step",
    "retry_count",
    "step_references",
]

MAX_STEPS = 100
MAX_RETRIES = 10
MAX_FOR_EACH_PARALLEL = 50
MAX_FOR_EACH_ITERATIONS = 1000
TOOL_REFERENCE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*\Z")
_STEP_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*\Z")
"""Step ids as ToolHive's examples write them (``fetch_data``, ``step-1``); one that is not an identifier
is read with ``index .steps "step-1"`` (Go's templates read ``.steps.step-1`` as ``.steps.step`` minus 1)."""
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
_STEP_FIELDS = ("output", "status", "error")
ROOTS = ("params", "steps", "vars", "workflow", "forEach")
"""The template roots (ToolHive's): the call's arguments, the steps' results, workflow variables (none
are ever set, as in ToolHive), ``.workflow`` (id, start_time, step_count, status, duration_ms) and a
forEach step's ``.forEach.<itemVar>`` / ``.forEach.index``."""
_ELICITATION_FIELDS = ("message", "schema_", "on_decline", "on_cancel")
_FOR_EACH_FIELDS = ("collection", "item_var", "max_parallel", "max_iterations", "step")
_TOOL_FIELDS = ("tool", "arguments")


def effective_action(step: WorkflowStepConfig, tool: CompositeToolConfig) -> str:
    """What a failing step does after its retries: its ``onError.action`` (``retry`` ends in ``abort``),
    else the workflow's ``failureMode``, else ``abort``."""
    action = step.on_error.action if step.on_error is not None else None
    if action == "retry":
        return "abort"
    return action or tool.failure_mode or "abort"


def retry_count(step: WorkflowStepConfig) -> int:
    """How many more attempts after the first (``retryCount`` or its other name ``maxRetries``)."""
    handling = step.on_error
    if handling is None:
        return 0
    return handling.retry_count or handling.max_retries or 0


def _duration_problem(text: str | None, field: str) -> Problem | None:
    if text is None:
        return None
    try:
        parse_duration(text)
    except ValueError:
        return Problem(field, f"{text!r} is not a duration above zero; write e.g. 30s, 500ms or 2m")
    return None


def composite_tools_problems(tools: list[CompositeToolConfig], base: str) -> list[Problem]:
    """The problems of a list of composite tools (``base`` is the list's path): each tool's, and names
    used twice."""
    problems = []
    counts = Counter(t.name for t in tools)
    for i, tool in enumerate(tools):
        if counts[tool.name] > 1:
            problems.append(Problem(f"{base}[{i}].name", f"{tool.name!r} is used by several composite tools"))
        problems += composite_tool_problems(tool, f"{base}[{i}]")
    return problems


def composite_tool_problems(tool: CompositeToolConfig, base: str) -> list[Problem]:
    """Everything wrong with one composite tool (``base`` is its path, e.g. ``spec``)."""
    problems = _parameters_problems(tool.parameters, f"{base}.parameters")
    if (bad := _duration_problem(tool.timeout, f"{base}.timeout")) is not None:
        problems.append(bad)
    if len(tool.steps) > MAX_STEPS:
        problems.append(Problem(f"{base}.steps", f"has {len(tool.steps)} steps; at most {MAX_STEPS}"))
    ids: dict[str, int] = {}
    for i, step in enumerate(tool.steps):
        if step.id in ids:
            problems.append(
                Problem(
                    f"{base}.steps[{i}].id", f"step {step.id!r} is defined twice (also steps[{ids[step.id]}])"
                )
            )
        ids.setdefault(step.id, i)
    for i, step in enumerate(tool.steps):
        problems += _step_problems(tool, step, f"{base}.steps[{i}]", ids)
    problems += _cycle_problems(tool, base, ids)
    if not any(p.message.startswith("step dependency cycle") for p in problems):
        problems += _reference_problems(tool, base, ids)
    return problems


def _parameters_problems(parameters: Mapping[str, Any] | None, field: str) -> list[Problem]:
    if parameters is None:
        return []
    if parameters.get("type") != "object":
        return [Problem(f"{field}.type", "must be 'object' (parameters is a JSON Schema of the arguments)")]
    properties = parameters.get("properties")
    if properties is not None and not (
        isinstance(properties, dict) and all(isinstance(v, dict) for v in properties.values())
    ):
        return [Problem(f"{field}.properties", "must map each parameter name to its JSON Schema")]
    required = parameters.get("required")
    if required is not None and not (
        isinstance(required, list) and all(isinstance(r, str) for r in required)
    ):
        return [Problem(f"{field}.required", "must be a list of parameter names")]
    return []


def _step_problems(
    tool: CompositeToolConfig, step: WorkflowStepConfig, field: str, ids: Mapping[str, int]
) -> list[Problem]:
    name = f"step {step.id!r}"
    problems = []
    if not _STEP_ID.match(step.id):
        problems.append(
            Problem(
                f"{field}.id",
                f"{name}: use letters, digits, '_' and '-' (templates read it as .steps.<id>, or as "
                "index .steps \"<id>\" when it has a '-')",
            )
        )
    if step.type == "forEach":
        problems += _for_each_problems(step, field, name)
    foreign = {
        "tool": _ELICITATION_FIELDS + _FOR_EACH_FIELDS,
        "elicitation": _TOOL_FIELDS + _FOR_EACH_FIELDS,
        "forEach": _TOOL_FIELDS + _ELICITATION_FIELDS,
    }
    for attribute in foreign.get(step.type, ()):
        if getattr(step, attribute) is not None:
            json_name = WorkflowStepConfig.model_fields[attribute].alias or attribute
            problems.append(
                Problem(f"{field}.{json_name}", f"{name}: not used by a step of type {step.type}")
            )
    if step.type == "tool":
        problems += _tool_reference_problems(step.tool, f"{field}.tool", name)
    if step.type == "elicitation":
        if not step.message:
            problems.append(Problem(f"{field}.message", f"{name}: an elicitation step needs the question"))
        if step.schema_ is not None and step.schema_.get("type") != "object":
            problems.append(
                Problem(f"{field}.schema.type", f"{name}: the answer's schema must be type object")
            )
    for i, dep in enumerate(step.depends_on or []):
        if dep == step.id:
            problems.append(Problem(f"{field}.dependsOn[{i}]", f"{name} depends on itself; remove it"))
        elif dep not in ids:
            problems.append(Problem(f"{field}.dependsOn[{i}]", f"{name} depends on unknown step {dep!r}"))
    if (bad := _duration_problem(step.timeout, f"{field}.timeout")) is not None:
        problems.append(bad)
    problems += _error_handling_problems(step, f"{field}.onError")
    for template_field, text in _step_templates(step, field):
        try:
            parse_template(text)
        except TemplateError as exc:
            problems.append(Problem(template_field, f"{name}: {exc}"))
    return problems


def _tool_reference_problems(tool: str | None, field: str, name: str) -> list[Problem]:
    if not tool:
        return [Problem(field, f"{name}: set the tool to call, e.g. <backend>.<tool>")]
    if not TOOL_REFERENCE.match(tool):
        return [
            Problem(
                field,
                f"{name}: {tool!r} is not a tool name; write <backend>.<tool> or the name clients see "
                "(letters, digits, '.', '_', '-')",
            )
        ]
    return []


def inner_step(step: WorkflowStepConfig) -> WorkflowStepConfig | None:
    """A forEach step's ``step`` as a step (None when it does not parse: reported by the rules)."""
    try:
        return WorkflowStepConfig.model_validate({"id": step.id, **(step.step or {})})
    except ValidationError:
        return None


def _for_each_problems(step: WorkflowStepConfig, field: str, name: str) -> list[Problem]:
    problems = []
    if not step.collection:
        problems.append(Problem(f"{field}.collection", f"{name}: set the list to iterate over (a template)"))
    inner = inner_step(step)
    if step.step is None or inner is None or inner.type != "tool":
        problems.append(Problem(f"{field}.step", f"{name}: set the step run per item: {{tool, arguments}}"))
    else:
        problems += _tool_reference_problems(inner.tool, f"{field}.step.tool", name)
        unused = sorted(set(step.step) - {"type", "tool", "arguments"})
        if unused:
            problems.append(Problem(f"{field}.step", f"{name}: the inner step takes only tool and arguments"))
    if step.item_var is not None and (not _IDENTIFIER.match(step.item_var) or step.item_var == "index"):
        problems.append(Problem(f"{field}.itemVar", f"{name}: an identifier other than 'index', e.g. item"))
    if not 0 <= (step.max_parallel or 0) <= MAX_FOR_EACH_PARALLEL:
        problems.append(Problem(f"{field}.maxParallel", f"{name}: between 1 and {MAX_FOR_EACH_PARALLEL}"))
    if not 0 <= (step.max_iterations or 0) <= MAX_FOR_EACH_ITERATIONS:
        problems.append(Problem(f"{field}.maxIterations", f"{name}: between 1 and {MAX_FOR_EACH_ITERATIONS}"))
    return problems


def _error_handling_problems(step: WorkflowStepConfig, field: str) -> list[Problem]:
    handling = step.on_error
    if handling is None:
        return []
    name = f"step {step.id!r}"
    problems = []
    if (
        handling.retry_count is not None
        and handling.max_retries is not None
        and handling.retry_count != handling.max_retries
    ):
        problems.append(
            Problem(f"{field}.maxRetries", f"{name}: maxRetries is another name of retryCount; set only one")
        )
    count = retry_count(step)
    if handling.action == "retry" and count < 1:
        problems.append(
            Problem(f"{field}.retryCount", f"{name}: action retry needs retryCount of at least 1")
        )
    if count > MAX_RETRIES:
        problems.append(Problem(f"{field}.retryCount", f"{name}: {count} retries; at most {MAX_RETRIES}"))
    if (bad := _duration_problem(handling.retry_delay, f"{field}.retryDelay")) is not None:
        problems.append(bad)
    return problems


def _strings(value: Any, field: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield field, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{field}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{field}[{i}]")


def _step_templates(step: WorkflowStepConfig, field: str) -> Iterator[tuple[str, str]]:
    yield from _strings(step.arguments or {}, f"{field}.arguments")
    if step.condition is not None:
        yield f"{field}.condition", step.condition
    if step.message is not None:
        yield f"{field}.message", step.message
    if step.collection is not None:
        yield f"{field}.collection", step.collection
    if step.type == "forEach" and isinstance((step.step or {}).get("arguments"), dict):
        yield from _strings((step.step or {})["arguments"], f"{field}.step.arguments")


def _output_templates(properties: Mapping[str, OutputProperty], field: str) -> Iterator[tuple[str, str]]:
    for name, prop in sorted(properties.items()):
        if prop.value is not None:
            yield f"{field}.{name}.value", prop.value
        yield from _output_templates(prop.properties or {}, f"{field}.{name}.properties")


def step_references(text: str) -> list[tuple[str, ...]]:
    """The field paths a template reads (empty when it does not parse: that is reported elsewhere)."""
    try:
        return parse_template(text).references()
    except TemplateError:
        return []


def _cycle_problems(tool: CompositeToolConfig, base: str, ids: Mapping[str, int]) -> list[Problem]:
    graph = {s.id: [d for d in s.depends_on or [] if d in ids and d != s.id] for s in tool.steps}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in graph[node]:
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep not in state and (cycle := visit(dep)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for step in tool.steps:
        if step.id not in state and (cycle := visit(step.id)) is not None:
            first = cycle[0]
            return [
                Problem(
                    f"{base}.steps[{ids[first]}].dependsOn",
                    f"step dependency cycle: {' -> '.join(repr(s) for s in cycle)} (each waits for the "
                    "next); remove one of these dependsOn entries",
                )
            ]
    return []


def _ancestors(tool: CompositeToolConfig) -> dict[str, set[str]]:
    direct = {s.id: set(s.depends_on or []) for s in tool.steps}
    result: dict[str, set[str]] = {}

    def of(step_id: str) -> set[str]:
        if step_id not in result:
            result[step_id] = set()
            for dep in direct.get(step_id, ()):
                result[step_id] |= {dep, *of(dep)}
        return result[step_id]

    for step_id in direct:
        of(step_id)
    return result


def _reference_problems(tool: CompositeToolConfig, base: str, ids: Mapping[str, int]) -> list[Problem]:
    ancestors = _ancestors(tool)
    skippable = {
        s.id: set((s.default_results or {}).keys())
        for s in tool.steps
        if s.condition is not None or effective_action(s, tool) == "continue"
    }
    problems = []
    for i, step in enumerate(tool.steps):
        for field, text in _step_templates(step, f"{base}.steps[{i}]"):
            for path in step_references(text):
                problems += _reference_problem(
                    path,
                    field,
                    reader=f"step {step.id!r}",
                    visible=ancestors.get(step.id, set()),
                    ids=ids,
                    skippable=skippable,
                )
    if tool.output is not None:
        for field, text in _output_templates(tool.output.properties, f"{base}.output.properties"):
            for path in step_references(text):
                problems += _reference_problem(
                    path, field, reader="output", visible=set(ids), ids=ids, skippable=skippable
                )
        problems += _output_shape_problems(tool.output.properties, f"{base}.output.properties")
        for name in tool.output.required or []:
            if name not in tool.output.properties:
                problems.append(Problem(f"{base}.output.required", f"{name!r} is not in output.properties"))
    return problems


def _reference_problem(
    path: tuple[str, ...],
    field: str,
    *,
    reader: str,
    visible: set[str],
    ids: Mapping[str, int],
    skippable: Mapping[str, set[str]],
) -> list[Problem]:
    text = "." + ".".join(path)
    if path[:1] == ("forEach",) and ".step.arguments" not in field:  # only a forEach step's per-item ones
        return [
            Problem(
                field, f"{reader}: {text} is not available; templates read .params.<name> and .steps.<id>"
            )
        ]
    if path[:1] != ("steps",) or len(path) < 2:
        return []  # .params, .vars, .workflow; another root reads as <no value> (a notice)
    step_id = path[1]
    if step_id not in ids:
        hyphenated = sorted(i for i in ids if i.startswith(f"{step_id}-"))
        hint = f"; a step id with a '-' is read as index .steps \"{hyphenated[0]}\"" if hyphenated else ""
        return [Problem(field, f"{reader}: {text} names unknown step {step_id!r}{hint}")]
    if step_id not in visible:
        return [
            Problem(
                field,
                f"{reader}: {text} reads step {step_id!r}, which is not among its dependencies (direct or "
                f"through other steps); add {step_id!r} to dependsOn",
            )
        ]
    if len(path) > 2 and path[2] not in _STEP_FIELDS:
        return [Problem(field, f"{reader}: {text}: a step has only .output, .status and .error")]
    defaults = skippable.get(step_id)
    if defaults is not None and len(path) > 3 and path[2] == "output" and path[3] not in defaults:
        return [
            Problem(
                field,
                f"{reader}: {text} reads step {step_id!r}, which may be skipped or fail without stopping "
                f"the workflow; give {step_id!r} defaultResults.{path[3]}",
            )
        ]
    return []


def composite_tool_notices(tool: CompositeToolConfig, base: str) -> list[Problem]:
    """What is valid, as in ToolHive, but reads nothing: a template root other than :data:`ROOTS`
    (``{{.timestamp}}``) renders as Go's ``<no value>``, in ToolHive and here alike."""
    found = []
    for i, step in enumerate(tool.steps):
        found += [(f, t, f"step {step.id!r}") for f, t in _step_templates(step, f"{base}.steps[{i}]")]
    if tool.output is not None:
        found += [
            (f, t, "output")
            for f, t in _output_templates(tool.output.properties, f"{base}.output.properties")
        ]
    notices = []
    for field, text, reader in found:
        for path in dict.fromkeys(step_references(text)):
            if not path or path[0] not in ROOTS:
                notices.append(
                    Problem(
                        field,
                        f"{reader}: .{'.'.join(path)} is not a template root, so it renders as <no value> "
                        "(as in ToolHive, whose roots are .params, .steps, .vars and .workflow); for the "
                        "workflow's start time write .workflow.start_time",
                    )
                )
    return notices


def _output_shape_problems(properties: Mapping[str, OutputProperty], field: str) -> list[Problem]:
    problems = []
    for name, prop in sorted(properties.items()):
        where = f"{field}.{name}"
        if prop.value is not None and prop.properties:
            problems.append(Problem(where, "set either value or properties, not both"))
        elif prop.value is None and not prop.properties:
            problems.append(Problem(where, "set value (a template), or properties for an object"))
        elif prop.properties and prop.type != "object":
            problems.append(Problem(f"{where}.type", "properties are only for type object"))
        problems += _output_shape_problems(prop.properties or {}, f"{where}.properties")
    return problems
