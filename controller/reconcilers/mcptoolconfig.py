"""The MCPToolConfig controller: ``Accepted`` (the ``Valid`` column) and ``status.configHash``.

Workloads referring to a MCPToolConfig watch it through the ``ref:toolConfig`` index and re-render their
proxy configuration when it changes; this controller only reports whether the filter is valid and the
hash of its spec (the same hash the workloads copy into ``status.toolConfigHash``).
"""

from __future__ import annotations

from api.conditions import ACCEPTED
from api.mcptoolconfig import MCPToolConfig
from api.problems import format_problems
from api.validation import parse_and_validate
from controller.core import Controller, ObjectKey, ReconcileContext, Result
from controller.core.manager import Manager
from controller.reconcilers.children import JSON, spec_hash
from controller.reconcilers.kinds import MCPTOOLCONFIG
from controller.reconcilers.settings import ReconcilerSettings
from controller.reconcilers.status import StatusBuilder
from controller.reconcilers.writes import emit


async def reconcile(key: ObjectKey, ctx: ReconcileContext) -> Result:
    raw = ctx.cache.get(MCPTOOLCONFIG, key.namespace, key.name)
    if raw is None:
        return Result.done()
    builder = StatusBuilder.of(raw)
    parsed, problems = parse_and_validate(raw)
    status: JSON = {"observedGeneration": builder.generation}
    if problems or not isinstance(parsed, MCPToolConfig):
        builder.set(ACCEPTED, False, "InvalidSpec", format_problems(problems))
    else:
        builder.set(ACCEPTED, True, "Accepted", "the tool configuration is valid")
        status["configHash"] = spec_hash(parsed.spec)
    status["conditions"] = builder.conditions
    await ctx.applier.apply_status(raw, status)
    await emit(ctx, raw, builder.events)
    return Result.done()


def controller(manager: Manager, settings: ReconcilerSettings) -> Controller:
    """The MCPToolConfig controller (it reads nothing but the config itself)."""
    return Controller(name="mcptoolconfig", for_=MCPTOOLCONFIG, reconcile=reconcile)
