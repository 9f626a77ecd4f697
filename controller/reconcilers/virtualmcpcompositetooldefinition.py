"""The VirtualMCPCompositeToolDefinition controller: whether the workflow is valid, and who uses it.

Status (ToolHive's fields): ``validationStatus`` (``Valid`` / ``Invalid``), ``validationErrors`` (each
names the step's field and the fix), ``referencingVirtualServers`` and the conditions ``Accepted`` (the
``Valid`` column) and ``WorkflowValidated`` (reason ``ValidationSuccess``, or ``DependencyCycle``,
``TemplateInvalid``, ``SchemaInvalid``, ``ValidationFailed``). VirtualMCPServers watch this kind and
render a valid definition into their gateway's config (a hot reload, no rollout); an invalid one blocks
them (``ResolvedRefs=False`` naming it).
"""

from __future__ import annotations

from api.conditions import ACCEPTED
from api.notices import notices
from api.problems import Problem, format_problems
from api.validation import parse_and_validate
from api.virtualmcpcompositetooldefinition import WORKFLOW_VALIDATED, VirtualMCPCompositeToolDefinition
from controller.core import Cache, Controller, ObjectKey, ReconcileContext, Result, Watch
from controller.core.manager import Manager
from controller.reconcilers.children import JSON
from controller.reconcilers.kinds import VIRTUALMCPCOMPOSITETOOLDEFINITION, VIRTUALMCPSERVER
from controller.reconcilers.settings import ReconcilerSettings
from controller.reconcilers.status import StatusBuilder, accept
from controller.reconcilers.writes import emit


def composite_tool_ref_names(spec: JSON) -> list[str]:
    """The definitions a VirtualMCPServer spec (raw dict) names in ``config.compositeToolRefs``."""
    config = spec.get("config")
    refs = config.get("compositeToolRefs") if isinstance(config, dict) else None
    names = {r.get("name") for r in refs or [] if isinstance(r, dict)}
    return sorted(n for n in names if isinstance(n, str) and n)


def referencing_servers(cache: Cache, namespace: str, name: str) -> list[str]:
    """Names of the VirtualMCPServers of ``namespace`` that reference the definition ``name``."""
    return sorted(
        str(o["metadata"]["name"])
        for o in cache.list(VIRTUALMCPSERVER, namespace)
        if name in composite_tool_ref_names(o.get("spec") or {})
    )


def validation_reason(problems: list[Problem]) -> str:
    """The ``WorkflowValidated`` reason of the first kind of problem found (ToolHive's reasons)."""
    messages = [p.message for p in problems]
    if any("dependency cycle" in m for m in messages):
        return "DependencyCycle"
    if any(
        p.field.endswith((".arguments", ".condition", ".value")) or " in '" in p.message for p in problems
    ):
        return "TemplateInvalid"
    if any(".parameters" in p.field for p in problems):
        return "SchemaInvalid"
    return "ValidationFailed"


async def reconcile(key: ObjectKey, ctx: ReconcileContext) -> Result:
    raw = ctx.cache.get(VIRTUALMCPCOMPOSITETOOLDEFINITION, key.namespace, key.name)
    if raw is None:
        return Result.done()
    builder = StatusBuilder.of(raw)
    parsed, problems = parse_and_validate(raw)
    status: JSON = {"observedGeneration": builder.generation}
    users = referencing_servers(ctx.cache, key.namespace, key.name)
    if users:
        status["referencingVirtualServers"] = users
    if problems or not isinstance(parsed, VirtualMCPCompositeToolDefinition):
        message = format_problems(problems)
        status["validationStatus"] = "Invalid"
        status["validationErrors"] = [str(p) for p in problems]
        builder.set(ACCEPTED, False, "InvalidSpec", message)
        builder.set(WORKFLOW_VALIDATED, False, validation_reason(problems), message, event=False)
    else:
        status["validationStatus"] = "Valid"
        steps = len(parsed.spec.steps)
        accept(builder, notices(parsed), f"composite tool {parsed.spec.name!r} is valid")
        builder.set(
            WORKFLOW_VALIDATED,
            True,
            "ValidationSuccess",
            f"{steps} step(s), no cycle, templates valid",
            event=False,
        )
    status["conditions"] = builder.conditions
    await ctx.applier.apply_status(raw, status)
    await emit(ctx, raw, builder.events)
    return Result.done()


def controller(manager: Manager, settings: ReconcilerSettings) -> Controller:
    """The VirtualMCPCompositeToolDefinition controller (it renders nothing)."""

    def referenced(obj: JSON) -> list[ObjectKey]:
        namespace = str((obj.get("metadata") or {}).get("namespace") or "")
        return [ObjectKey(namespace, n) for n in composite_tool_ref_names(obj.get("spec") or {})]

    return Controller(
        name="virtualmcpcompositetooldefinition",
        for_=VIRTUALMCPCOMPOSITETOOLDEFINITION,
        reconcile=reconcile,
        watches=[Watch(VIRTUALMCPSERVER, referenced)],
    )
