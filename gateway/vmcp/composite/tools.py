"""Composite tools in the gateway: listed beside the backends' tools, called through the same routing.

A composite tool is listed (name, description, ``inputSchema`` = ``parameters``, ``outputSchema`` from
``output``, annotations) only while every step's tool resolves in the aggregated view, and its name is
not a backend tool's; otherwise it is left out with a warning in ``/status``. Annotations are derived
fail-closed from the step tools, as ToolHive does: ``readOnlyHint`` only when every step tool is
read-only, ``destructiveHint`` and ``openWorldHint`` when any step tool is (or does not say); the
definition's ``annotations`` are merged over them, and one that would make the tool look safer than its
steps leaves the tool out.

A step's ``tool`` resolves to the exposed name it equals, else, written ``<backend>.<tool>``, to the tool
that backend lists under that (original) name. Its call goes through :meth:`StepRouter.call_tool`, the
gateway's own: filters, health, circuit breaker, metrics and audit apply to each step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

import mcp_types as types
from mcp.shared.exceptions import MCPError

from api.composite import CompositeToolConfig, OutputProperty
from api.composite_rules import inner_step

from ..aggregation import AggregatedView
from ..backend import ListKind
from .output import coerce_text
from .workflow import Elicit, StepCallError, run_workflow

__all__ = ["StepRouter", "call_composite", "resolve_step_tool", "with_composites"]


class StepRouter(Protocol):
    """What a composite call needs from the gateway."""

    def view(self) -> AggregatedView: ...

    async def refresh(self, kinds: tuple[ListKind, ...]) -> AggregatedView: ...

    def tool_input_schema(self, name: str) -> Mapping[str, Any] | None: ...

    async def call_tool(
        self, name: str, arguments: Mapping[str, Any] | None, *, caller: str = ..., principal: Any = ...
    ) -> types.CallToolResult: ...


def resolve_step_tool(view: AggregatedView, reference: str) -> str | None:
    """The exposed name of the backend tool a step's ``tool`` names, or None."""
    if reference in view.tool_routes:
        return reference
    backend, dot, original = reference.partition(".")
    if not dot or not backend:
        return None
    for exposed, route in view.tool_routes.items():
        if route.backend == backend and route.name == original:
            return exposed
    return None


def with_composites(
    view: AggregatedView, composites: Sequence[CompositeToolConfig]
) -> tuple[AggregatedView, dict[str, CompositeToolConfig]]:
    """``view`` with the composite tools that can run added to its tools (sorted by name), and those
    tools by name; what is left out is explained in the view's warnings."""
    if not composites:
        return view, {}
    tools = {t.name: t for t in view.tools}
    listed: dict[str, CompositeToolConfig] = {}
    entries: list[types.Tool] = []
    warnings = list(view.warnings)
    for composite in composites:
        calls = [(s.id, s.tool if s.type == "tool" else (inner_step(s) or s).tool) for s in composite.steps]
        steps = [(sid, ref or "", resolve_step_tool(view, ref or "")) for sid, ref in calls if ref]
        unresolved = [f"step {sid!r} ({ref!r})" for sid, ref, exposed in steps if exposed is None]
        annotations, contradiction = _annotations(composite, [tools[e] for _, _, e in steps if e])
        why = (
            f"a backend tool is also named {composite.name!r}; rename the composite tool"
            if composite.name in tools
            else f"tools not available: {', '.join(unresolved)}"
            if unresolved
            else contradiction
        )
        if why:
            warnings.append(f"compositeTools[{composite.name}] is not listed: {why}")
            continue
        listed[composite.name] = composite
        entries.append(_tool(composite, annotations))
    merged = tuple(sorted((*view.tools, *entries), key=lambda t: t.name))
    return replace(view, tools=merged, warnings=tuple(sorted(warnings))), listed


def _tool(composite: CompositeToolConfig, annotations: types.ToolAnnotations) -> types.Tool:
    output_schema = None
    if composite.output is not None:
        output_schema = {
            "type": "object",
            "properties": {n: _property_schema(p) for n, p in sorted(composite.output.properties.items())},
            **({"required": list(composite.output.required)} if composite.output.required else {}),
        }
    return types.Tool(
        name=composite.name,
        description=composite.description,
        input_schema=dict(composite.parameters or {"type": "object", "properties": {}}),
        output_schema=output_schema,
        annotations=annotations,
    )


def _property_schema(prop: OutputProperty) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": prop.type}
    if prop.description:
        schema["description"] = prop.description
    if prop.properties:
        schema["properties"] = {n: _property_schema(p) for n, p in sorted(prop.properties.items())}
    return schema


def _annotations(
    composite: CompositeToolConfig, step_tools: Sequence[types.Tool]
) -> tuple[types.ToolAnnotations, str]:
    """The derived floor with the explicit hints over it, and why they contradict it ("" if not)."""
    hints = [t.annotations for t in step_tools]
    read_only = all(h is not None and h.read_only_hint is True for h in hints)
    destructive = any(h is None or h.destructive_hint is not False for h in hints)
    open_world = any(h is None or h.open_world_hint is not False for h in hints)
    explicit = composite.annotations
    if explicit is None:
        floor = types.ToolAnnotations(
            read_only_hint=read_only, destructive_hint=destructive, open_world_hint=open_world
        )
        return floor, ""
    contradictions = []
    if explicit.read_only_hint is True and not read_only:
        contradictions.append("readOnlyHint is true but not every step tool is read-only")
    if explicit.destructive_hint is False and destructive:
        contradictions.append("destructiveHint is false but a step tool is destructive (or does not say)")
    if explicit.open_world_hint is False and open_world:
        contradictions.append("openWorldHint is false but a step tool is open-world (or does not say)")
    merged = types.ToolAnnotations(
        title=explicit.title,
        read_only_hint=read_only if explicit.read_only_hint is None else explicit.read_only_hint,
        destructive_hint=destructive if explicit.destructive_hint is None else explicit.destructive_hint,
        idempotent_hint=explicit.idempotent_hint,
        open_world_hint=open_world if explicit.open_world_hint is None else explicit.open_world_hint,
    )
    return merged, "; ".join(
        f"its annotations make it look safer than its steps: {c}" for c in contradictions
    )


def coerce_arguments(schema: Mapping[str, Any] | None, arguments: dict[str, Any]) -> dict[str, Any]:
    """Expanded template strings converted to the types the step tool declares (``"3"`` -> 3 for an
    integer); a string that does not convert is sent as it is (the tool then says what is wrong)."""
    properties = (schema or {}).get("properties") or {}
    coerced = dict(arguments)
    for name, value in arguments.items():
        declared = properties.get(name)
        json_type = declared.get("type") if isinstance(declared, dict) else None
        if isinstance(value, str) and isinstance(json_type, str) and json_type != "string":
            with contextlib.suppress(ValueError):
                coerced[name] = coerce_text(value, json_type)
    return coerced


async def call_composite(
    router: StepRouter,
    composite: CompositeToolConfig,
    arguments: Mapping[str, Any] | None,
    caller: str,
    *,
    elicit: Elicit | None = None,
    principal: Any = None,
) -> types.CallToolResult:
    """Run a composite tool, each step through ``router.call_tool`` as ``caller`` (authorized for
    ``principal`` like a call of its own); elicitation steps through ``elicit`` (None: the client cannot
    be asked, such a step fails)."""

    async def call_step(reference: str, step_arguments: dict[str, Any]) -> types.CallToolResult:
        exposed = resolve_step_tool(router.view(), reference)
        if exposed is None:
            exposed = resolve_step_tool(await router.refresh(("tools",)), reference)
        if exposed is None:
            raise StepCallError(
                f"tool {reference!r} is not available (no backend lists it, a filter hides it, or its "
                "backend is unavailable)"
            )
        step_arguments = coerce_arguments(router.tool_input_schema(exposed), step_arguments)
        try:
            return await router.call_tool(exposed, step_arguments, caller=caller, principal=principal)
        except MCPError as exc:
            raise StepCallError(exc.error.message) from exc

    return await run_workflow(composite, arguments, call_step, elicit=elicit)
