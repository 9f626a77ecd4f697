"""The MCPToolConfig controller: ``Accepted`` (the ``Valid`` column) and ``status.configHash``.

Workloads referring to a MCPToolConfig watch it through the ``ref:toolConfig`` index and re-render their
proxy configuration when it changes; this controller only reports whether the filter is valid and the
hash of its spec (the same hash the workloads copy into ``status.toolConfigHash``).
:func:`config_controller` is the same controller for any such status-only config kind (MCPTelemetryConfig).
"""

from __future__ import annotations

from api.conditions import ACCEPTED
from api.mcptoolconfig import MCPToolConfig
from api.problems import format_problems
from api.resource import CustomResource
from api.validation import parse_and_validate
from controller.core import Controller, ObjectKey, ReconcileContext, Resource, Result
from controller.core.manager import Manager
from controller.reconcilers.children import JSON, spec_hash
from controller.reconcilers.kinds import MCPTOOLCONFIG
from controller.reconcilers.settings import ReconcilerSettings
from controller.reconcilers.status import StatusBuilder
from controller.reconcilers.writes import emit


def config_controller(
    name: str, resource: Resource, model: type[CustomResource], accepted_message: str
) -> Controller:
    """A controller that reports a config kind's ``Accepted`` (its rules) and ``configHash``."""

    async def reconcile(key: ObjectKey, ctx: ReconcileContext) -> Result:
        raw = ctx.cache.get(resource, key.namespace, key.name)
        if raw is None:
            return Result.done()
        generation = int((raw.get("metadata") or {}).get("generation") or 0)
        previous: JSON = raw.get("status") or {}
        builder = StatusBuilder(list(previous.get("conditions") or []), generation)
        parsed, problems = parse_and_validate(raw)
        status: JSON = {"observedGeneration": generation}
        if problems or not isinstance(parsed, model):
            builder.set(ACCEPTED, False, "InvalidSpec", format_problems(problems))
        else:
            builder.set(ACCEPTED, True, "Accepted", accepted_message)
            status["configHash"] = spec_hash(parsed.spec)  # type: ignore[attr-defined]  # every config kind has one
        status["conditions"] = builder.conditions
        await ctx.applier.apply_status(raw, status)
        await emit(ctx, raw, builder.events)
        return Result.done()

    return Controller(name=name, for_=resource, reconcile=reconcile)


def controller(manager: Manager, settings: ReconcilerSettings) -> Controller:
    """The MCPToolConfig controller (it reads nothing but the config itself)."""
    return config_controller("mcptoolconfig", MCPTOOLCONFIG, MCPToolConfig, "the tool configuration is valid")
