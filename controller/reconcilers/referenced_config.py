"""One reconcile for the shared configuration kinds that workloads refer to by name and that report who
does (MCPOIDCConfig with ``oidcConfigRef``, MCPTelemetryConfig with ``telemetryConfigRef``): what differs
between them is data (:class:`ReferencedKind`).

Status: ``Accepted`` (the ``Valid`` column) and ``configHash`` (:mod:`controller.reconcilers.config_status`),
``referencingWorkloads`` and ``InUse`` (the MCPServers, MCPRemoteProxies and VirtualMCPServers whose
reference names it, read from the kind's reference index), plus what the kind adds (``ResolvedRefs`` for
the Secrets an MCPOIDCConfig names). Deletion waits while a workload refers to it
(:mod:`controller.reconcilers.in_use`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from api.resource import CustomResource
from api.validation import parse_and_validate
from controller.core import Cache, Controller, ObjectKey, ReconcileContext, Resource, Result, Watch
from controller.core.manager import Manager
from controller.reconcilers.children import JSON
from controller.reconcilers.config_status import accepted_status, write_status
from controller.reconcilers.in_use import hold_while_used
from controller.reconcilers.kinds import MCPREMOTEPROXY, MCPSERVER, VIRTUALMCPSERVER
from controller.reconcilers.refs import referenced
from controller.reconcilers.status import StatusBuilder

__all__ = ["WORKLOAD_KINDS", "ReferencedKind", "referencing_workloads"]

WORKLOAD_KINDS: tuple[Resource, ...] = (MCPSERVER, MCPREMOTEPROXY, VIRTUALMCPSERVER)


@dataclass(frozen=True)
class ReferencedKind:
    """A shared configuration kind that workloads refer to with ``<reference>`` (``oidcConfigRef``)."""

    name: str
    """The controller's name (``mcpoidcconfig``)."""
    resource: Resource
    model: type[CustomResource]
    reference: str
    """The workloads' field naming it, for the ``InUse`` message."""
    index: str
    """The workloads' reference index (``ref:oidcConfig``): values ``namespace/name``."""
    index_func: Callable[[JSON], list[str]]
    valid: Callable[[CustomResource], str]
    """The ``Accepted`` message of a valid object."""
    resolve: Callable[[ReconcileContext, JSON, StatusBuilder, bool], Awaitable[None]] | None = None
    """Sets the kind's own conditions (``ResolvedRefs``) given whether the spec is valid."""
    watches: Callable[[Cache], list[Watch]] = field(default=lambda cache: [])
    """The kind's own watches (the Secrets it names)."""


def referencing_workloads(cache: Cache, index: str, namespace: str, name: str) -> list[JSON]:
    """``{kind, name}`` of every workload whose reference (``index``) names ``namespace/name``, sorted."""
    value = f"{namespace}/{name}"
    found = [
        {"kind": resource.kind, "name": str((o.get("metadata") or {}).get("name"))}
        for resource in WORKLOAD_KINDS
        for o in cache.by_index(resource, index, value)
    ]
    return sorted(found, key=lambda ref: (ref["kind"], ref["name"]))


async def reconcile(kind: ReferencedKind, key: ObjectKey, ctx: ReconcileContext) -> Result:
    raw = ctx.cache.get(kind.resource, key.namespace, key.name)
    if raw is None:
        return Result.done()
    builder = StatusBuilder.of(raw)
    workloads = referencing_workloads(ctx.cache, kind.index, key.namespace, key.name)
    users = [f"{ref['kind']}/{ref['name']}" for ref in workloads]
    nobody = f"no MCPServer, MCPRemoteProxy or VirtualMCPServer refers to it with {kind.reference}"
    if await hold_while_used(ctx, raw, builder, users, nobody):
        return Result.done()
    parsed, problems = parse_and_validate(raw)
    # Invalid: the workloads referring to it are not deployed (or keep their last valid configuration).
    model = parsed if isinstance(parsed, kind.model) else None
    spec = getattr(model, "spec", None)
    valid = model is not None and not problems
    status = accepted_status(builder, problems, spec, kind.valid(model) if model is not None else "")
    if kind.resolve is not None:
        await kind.resolve(ctx, raw, builder, valid)
    await write_status(ctx, raw, {**status, "referencingWorkloads": workloads}, builder)
    return Result.done()


def referenced_controller(kind: ReferencedKind, manager: Manager) -> Controller:
    """The controller of ``kind``: it watches the workloads through their reference index."""
    cache = manager.cache
    for resource in WORKLOAD_KINDS:
        cache.add_index(resource, kind.index, kind.index_func)

    async def reconcile_one(key: ObjectKey, ctx: ReconcileContext) -> Result:
        return await reconcile(kind, key, ctx)

    return Controller(
        name=kind.name,
        for_=kind.resource,
        reconcile=reconcile_one,
        watches=[
            *(Watch(resource, referenced(kind.index_func)) for resource in WORKLOAD_KINDS),
            *kind.watches(cache),
        ],
    )
