"""The MCPOIDCConfig controller: validity, ``configHash``, the referencing workloads and deletion protection.

Status: ``Accepted`` (the ``Valid`` column), ``InUse`` and ``referencingWorkloads`` (the MCPServers,
MCPRemoteProxies and VirtualMCPServers whose ``oidcConfigRef`` names it, read from the ``ref:oidcConfig``
index) and ``configHash`` (hash of the spec; the workloads copy it into ``status.oidcConfigHash`` and
re-render when the config changes, through the same index). Deletion waits while a workload refers to it
(:mod:`controller.reconcilers.in_use`).
"""

from __future__ import annotations

from api.conditions import ACCEPTED
from api.mcpoidcconfig import MCPOIDCConfig
from api.problems import format_problems
from api.validation import parse_and_validate
from controller.core import Cache, Controller, ObjectKey, ReconcileContext, Resource, Result, Watch
from controller.core.manager import Manager
from controller.reconcilers.children import JSON, spec_hash
from controller.reconcilers.in_use import hold_while_used
from controller.reconcilers.kinds import MCPOIDCCONFIG, MCPREMOTEPROXY, MCPSERVER, VIRTUALMCPSERVER
from controller.reconcilers.refs import OIDC_CONFIG_INDEX, index_oidc_config
from controller.reconcilers.settings import ReconcilerSettings
from controller.reconcilers.status import StatusBuilder
from controller.reconcilers.writes import emit

WORKLOAD_KINDS: tuple[Resource, ...] = (MCPSERVER, MCPREMOTEPROXY, VIRTUALMCPSERVER)


def referencing_workloads(cache: Cache, namespace: str, name: str) -> list[JSON]:
    """``{kind, name}`` of every workload whose ``oidcConfigRef`` names ``namespace/name``, sorted."""
    value = f"{namespace}/{name}"
    found = [
        {"kind": resource.kind, "name": str((o.get("metadata") or {}).get("name"))}
        for resource in WORKLOAD_KINDS
        for o in cache.by_index(resource, OIDC_CONFIG_INDEX, value)
    ]
    return sorted(found, key=lambda ref: (ref["kind"], ref["name"]))


def config_of_workload(obj: JSON) -> list[ObjectKey]:
    """Watch mapper: the MCPOIDCConfig a workload names (called for the old and the new version)."""
    keys = []
    for value in index_oidc_config(obj):
        namespace, _, name = value.partition("/")
        keys.append(ObjectKey(namespace, name))
    return keys


async def reconcile(key: ObjectKey, ctx: ReconcileContext) -> Result:
    raw = ctx.cache.get(MCPOIDCCONFIG, key.namespace, key.name)
    if raw is None:
        return Result.done()
    generation = int((raw.get("metadata") or {}).get("generation") or 0)
    previous: JSON = raw.get("status") or {}
    builder = StatusBuilder(list(previous.get("conditions") or []), generation)
    workloads = referencing_workloads(ctx.cache, key.namespace, key.name)
    users = [f"{ref['kind']}/{ref['name']}" for ref in workloads]
    nobody = "no MCPServer, MCPRemoteProxy or VirtualMCPServer refers to it with oidcConfigRef"
    if await hold_while_used(ctx, raw, builder, users, nobody):
        return Result.done()
    parsed, problems = parse_and_validate(raw)
    status: JSON = {"observedGeneration": generation, "referencingWorkloads": workloads}
    if problems or not isinstance(parsed, MCPOIDCConfig):
        # Workloads referring to it are not deployed (or keep their last valid configuration).
        builder.set(ACCEPTED, False, "InvalidSpec", format_problems(problems))
    else:
        builder.set(ACCEPTED, True, "Accepted", f"the {parsed.spec.type} OIDC configuration is valid")
        status["configHash"] = spec_hash(parsed.spec)
    status["conditions"] = builder.conditions
    await ctx.applier.apply_status(raw, status)
    await emit(ctx, raw, builder.events)
    return Result.done()


def controller(manager: Manager, settings: ReconcilerSettings) -> Controller:
    """The MCPOIDCConfig controller (``settings`` unused: it renders nothing)."""
    for resource in WORKLOAD_KINDS:
        manager.cache.add_index(resource, OIDC_CONFIG_INDEX, index_oidc_config)
    return Controller(
        name="mcpoidcconfig",
        for_=MCPOIDCCONFIG,
        reconcile=reconcile,
        watches=[Watch(resource, config_of_workload) for resource in WORKLOAD_KINDS],
    )
