"""The MCPOIDCConfig controller: validity, ``configHash``, the referencing workloads and deletion protection.

Status: ``Accepted`` (the ``Valid`` column), ``ResolvedRefs`` (the client Secret it names exists),
``InUse`` and ``referencingWorkloads`` (the MCPServers,
MCPRemoteProxies and VirtualMCPServers whose ``oidcConfigRef`` names it, read from the ``ref:oidcConfig``
index) and ``configHash`` (hash of the spec; the workloads copy it into ``status.oidcConfigHash`` and
re-render when the config changes, through the same index). Deletion waits while a workload refers to it
(:mod:`controller.reconcilers.in_use`).
"""

from __future__ import annotations

from api.conditions import RESOLVED_REFS
from api.mcpoidcconfig import MCPOIDCConfig
from api.validation import parse_and_validate
from controller.core import SECRET, Cache, Controller, ObjectKey, ReconcileContext, Resource, Result, Watch
from controller.core.manager import Manager
from controller.reconcilers.children import JSON
from controller.reconcilers.config_status import accepted_status, write_status
from controller.reconcilers.in_use import hold_while_used
from controller.reconcilers.kinds import MCPOIDCCONFIG, MCPREMOTEPROXY, MCPSERVER, VIRTUALMCPSERVER
from controller.reconcilers.refs import (
    OIDC_CONFIG_INDEX,
    SECRET_INDEX,
    index_oidc_config,
    index_oidc_config_secrets,
    missing_config_secrets,
    oidc_config_secret_refs,
    referenced,
    secret_to_configs,
    strip_secret_values,
)
from controller.reconcilers.settings import ReconcilerSettings
from controller.reconcilers.status import StatusBuilder

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
    # Invalid: the workloads referring to it are not deployed (or keep their last valid configuration).
    spec = parsed.spec if isinstance(parsed, MCPOIDCConfig) else None
    valid = f"the {spec.type if spec else ''} OIDC configuration is valid"
    status = accepted_status(builder, problems, spec, valid)
    if problems or spec is None:
        builder.remove(RESOLVED_REFS)
    elif absent := missing_config_secrets(
        ctx.cache,
        key.namespace,
        f"MCPOIDCConfig '{key.name}'",
        oidc_config_secret_refs(raw.get("spec") or {}),
    ):
        builder.set(RESOLVED_REFS, False, absent[0].reason, "; ".join(m.message for m in absent))
    else:
        builder.set(RESOLVED_REFS, True, "ResolvedRefs", "every referenced Secret exists", event=False)
    await write_status(ctx, raw, {**status, "referencingWorkloads": workloads}, builder)
    return Result.done()


def controller(manager: Manager, settings: ReconcilerSettings) -> Controller:
    """The MCPOIDCConfig controller (``settings`` unused: it renders nothing)."""
    cache = manager.cache
    for resource in WORKLOAD_KINDS:
        cache.add_index(resource, OIDC_CONFIG_INDEX, index_oidc_config)
    cache.add_index(MCPOIDCCONFIG, SECRET_INDEX, index_oidc_config_secrets)
    cache.set_transform(SECRET, strip_secret_values)
    return Controller(
        name="mcpoidcconfig",
        for_=MCPOIDCCONFIG,
        reconcile=reconcile,
        watches=[
            *(Watch(resource, referenced(index_oidc_config)) for resource in WORKLOAD_KINDS),
            secret_to_configs(cache, MCPOIDCCONFIG),
        ],
    )
