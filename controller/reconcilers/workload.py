"""One reconcile for every workload kind (MCPServer, MCPRemoteProxy, VirtualMCPServer).

The algorithm is the same for all of them: read the object from the cache; write ``Terminating`` while it
is being deleted; refuse an invalid spec with ``Accepted=False`` (terminal until the spec changes); resolve
the references; render the children; refuse to take over children another controller owns; apply them
(skipped when unchanged, so a converged object costs zero writes) and prune the ones no longer wanted;
write status and Events. What differs between kinds is data: a :class:`WorkloadKind`. A workload whose
sessions live in Redis also gets the ``SessionStorageReachable`` condition (``storage_status``) and is
reconciled again after ``redis_recheck_seconds`` to keep it current.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Generic, TypeVar

from api.podtemplate import CONFIG_HASH_ANNOTATION
from api.problems import format_problems
from api.resource import CustomResource
from api.scaling import SessionStorage
from api.validation import parse_and_validate
from controller.core import (
    CONFIGMAP,
    DEPLOYMENT,
    SERVICE,
    SERVICEACCOUNT,
    Cache,
    Controller,
    ObjectKey,
    ReconcileContext,
    Resource,
    Result,
    Watch,
    is_being_deleted,
    owner_reference,
)
from controller.core.manager import Manager
from controller.reconcilers.children import JSON
from controller.reconcilers.refs import Missing
from controller.reconcilers.settings import ReconcilerSettings
from controller.reconcilers.status import TERMINATING, invalid_status, newest
from controller.reconcilers.storage_status import StorageMonitor, with_reachability
from controller.reconcilers.writes import (
    CONFLICT_RETRY_SECONDS,
    Events,
    announce_rollout,
    delete_stale,
    emit,
    name_conflicts,
)

FRONT_CHILDREN: tuple[Resource, ...] = (DEPLOYMENT, SERVICE, CONFIGMAP, SERVICEACCOUNT)
"""Child kinds every workload has: its front Deployment and Service, its config, its account."""

W = TypeVar("W", bound=CustomResource)
R = TypeVar("R")


@dataclass(frozen=True)
class Outcome:
    """What a reconcile saw and did, for the kind's status function."""

    cache: Cache
    previous: JSON
    """The status before this reconcile."""
    applied: dict[str, JSON]
    """Kind -> the API server's answer to this reconcile's apply (absent when skipped or not applied)."""
    conflicts: list[Missing]
    """Children whose name another controller's object holds (nothing was applied then)."""

    def newest(self, resource: Resource, namespace: str | None, name: str) -> JSON | None:
        """A child as this reconcile left it: what was just applied is newer than the cache, so judging
        from it gives the status the next reconcile would compute (the status is written once)."""
        return newest(self.cache.get(resource, namespace, name), self.applied.get(resource.kind))

    def url_once_served(self, namespace: str | None, service: str, url: str) -> str | None:
        """``url`` once the Service ``service`` exists, else None: ``status.url`` never names a Service
        that is not there yet (clients and VirtualMCPServers take a published URL as reachable)."""
        return url if self.newest(SERVICE, namespace, service) is not None else None


@dataclass(frozen=True)
class WorkloadKind(Generic[W, R]):
    """What differs between the workload kinds; :func:`reconcile_workload` runs the rest."""

    resource: Resource
    model: type[W]
    owned: tuple[Resource, ...]
    """Child kinds: watched (``Owns``) and pruned when no longer desired."""
    setup: Callable[[Cache], list[Watch]]
    """Registers the kind's cache indexes and transforms; returns the watches that map a referenced
    object's change to the workloads that refer to it."""
    resolve: Callable[[Cache, W, JSON], R]
    """The references, resolved from the cache (found objects, parsed and checked, and ``Missing`` ones);
    the last argument is the cached object as stored."""
    render: Callable[[W, JSON, R], list[JSON] | None]
    """The children (the middle argument is the owner reference), or None when unresolved references
    block them (the running children are kept)."""
    status: Callable[[W, R, Outcome], tuple[JSON, Events]]
    terminating_phase: str | None = TERMINATING
    """The phase written while the object is being deleted (None: the kind has no such phase)."""
    announce_rollout: bool = True
    """Whether a changed config hash of the front Deployment is announced with an Event."""


async def reconcile_workload(
    kind: WorkloadKind[W, R],
    key: ObjectKey,
    ctx: ReconcileContext,
    *,
    monitor: StorageMonitor | None = None,
    redis_recheck: float = 30.0,
) -> Result:
    """The reconcile contract (read the cache only; done, requeue-after or raise) for any workload kind."""
    raw = ctx.cache.get(kind.resource, key.namespace, key.name)
    if raw is None:
        if monitor is not None:
            monitor.forget(kind.resource.kind, key)
        return Result.done()  # deleted: the garbage collector removes the children
    meta = raw.get("metadata") or {}
    previous: JSON = raw.get("status") or {}
    if is_being_deleted(raw):
        if kind.terminating_phase is not None and previous.get("phase") != kind.terminating_phase:
            kept = {k: v for k, v in previous.items() if k in ("conditions", "url", "observedGeneration")}
            await ctx.applier.apply_status(raw, {**kept, "phase": kind.terminating_phase})
        return Result.done()

    parsed, problems = parse_and_validate(raw)
    if problems or not isinstance(parsed, kind.model):
        generation = int(meta.get("generation") or 0)
        status, events = invalid_status(previous, generation, format_problems(problems))
        await ctx.applier.apply_status(raw, status)
        await emit(ctx, raw, events)
        return Result.done()  # terminal until the spec changes (the next generation re-enqueues)

    resolution = kind.resolve(ctx.cache, parsed, raw)
    desired = kind.render(parsed, owner_reference(raw), resolution)
    uid = str(meta.get("uid"))
    conflicts = name_conflicts(ctx, desired, uid, f"{kind.resource.kind} '{key.name}'") if desired else []
    applied: dict[str, JSON] = {}
    if desired is not None and not conflicts:
        if kind.announce_rollout:
            await announce_rollout(ctx, raw, key.namespace, _front_name(desired), _config_digest(desired))
        # The children are independent objects: applied concurrently (they converge in any order).
        for child, result in zip(desired, await ctx.applier.apply_all(desired), strict=True):
            if result is not None:
                applied[child["kind"]] = result
        await delete_stale(ctx, uid, desired, kind.owned)

    status, events = kind.status(parsed, resolution, Outcome(ctx.cache, previous, applied, conflicts))
    recheck = None
    if monitor is not None:
        reach = await monitor.observe(kind.resource.kind, key, session_storage(parsed))
        generation = int(meta.get("generation") or 0)
        status, events = with_reachability(status, events, previous, generation, reach)
        recheck = monitor.recheck_after(reach, redis_recheck)
    await ctx.applier.apply_status(raw, status)
    await emit(ctx, raw, events)
    delays = [d for d in (CONFLICT_RETRY_SECONDS if conflicts else None, recheck) if d is not None]
    return Result.requeue_after(min(delays)) if delays else Result.done()


def workload_controller(
    kind: WorkloadKind[W, R], manager: Manager, settings: ReconcilerSettings | None = None
) -> Controller:
    """The controller of ``kind``: For the kind, Owns its children (and the PodDisruptionBudget every
    workload kind may have, in the version the API server serves), Watches what it refers to."""
    settings = settings or ReconcilerSettings()
    kind = replace(kind, owned=(*kind.owned, settings.disruption_budget))
    reconcile = partial(
        reconcile_workload,
        kind,
        monitor=StorageMonitor.of(manager.metrics.registry),
        redis_recheck=settings.redis_recheck_seconds,
    )
    return Controller(
        name=kind.resource.kind.lower(),
        for_=kind.resource,
        reconcile=reconcile,
        owns=list(kind.owned),
        watches=kind.setup(manager.cache),
    )


def session_storage(workload: CustomResource) -> SessionStorage | None:
    """A workload's ``spec.sessionStorage`` (every workload kind has one)."""
    storage = getattr(getattr(workload, "spec", None), "session_storage", None)
    return storage if isinstance(storage, SessionStorage) else None


def _front(desired: list[JSON]) -> JSON:
    for obj in desired:
        if obj["kind"] == "Deployment":
            return obj
    raise ValueError("no front Deployment among the desired children")


def _front_name(desired: list[JSON]) -> str:
    return str(_front(desired)["metadata"]["name"])


def _config_digest(desired: list[JSON]) -> str:
    return str(_front(desired)["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION])
