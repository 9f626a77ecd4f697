"""One reconcile for every workload kind (MCPServer, MCPRemoteProxy, VirtualMCPServer).

The algorithm is the same for all of them: read the object from the cache; write ``Terminating`` while it
is being deleted; refuse an invalid spec with ``Accepted=False`` (terminal until the spec changes); resolve
the references; render the children; refuse to take over children another controller owns; apply them
(skipped when unchanged, so a converged object costs zero writes) and prune the ones no longer wanted;
write status and Events. What differs between kinds is data: a :class:`WorkloadKind`. A workload whose
sessions live in Redis rolls out a new or changed Redis connection only once Redis took the pods'
handshake (``storage_gate``: else ``Accepted=False``, nothing applied, retried with backoff), gets the
``SessionStorageReachable`` condition (``storage_status``) and is reconciled again after
``redis_recheck_seconds`` to keep it current.
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
from controller.reconcilers.storage_gate import Admission, StorageGate, storage_secret_watch
from controller.reconcilers.storage_status import (
    Reachability,
    StorageMonitor,
    with_reachability,
    with_refusal,
)
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


@dataclass(frozen=True)
class StorageChecks:
    """A kind's Redis machinery: the reachability probe and gauge (shared by the process), the check of
    new and changed connections (per kind), and how often a Redis that answers is probed again."""

    monitor: StorageMonitor
    gate: StorageGate
    recheck: float = 30.0

    @classmethod
    def of(cls, manager: Manager, recheck: float) -> StorageChecks:
        monitor = StorageMonitor.of(manager.metrics.registry)
        return cls(
            monitor, StorageGate(recheck, lambda outcome: monitor.checks.labels(outcome).inc()), recheck
        )


async def reconcile_workload(
    kind: WorkloadKind[W, R], key: ObjectKey, ctx: ReconcileContext, *, storage: StorageChecks | None = None
) -> Result:
    """The reconcile contract (read the cache, and a referenced Redis password only when a new connection
    is checked; done, requeue-after or raise) for any workload kind."""
    raw = ctx.cache.get(kind.resource, key.namespace, key.name)
    if raw is None:
        if storage is not None:
            storage.monitor.forget(kind.resource.kind, key)
            storage.gate.forget(key)
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
    admission = Admission()
    if desired is not None and not conflicts and storage is not None:
        admission = await storage.gate.admit(key, session_storage(parsed), desired, ctx.cache, ctx.client)
    applied: dict[str, JSON] = {}
    if desired is not None and not conflicts and admission.refusal is None:
        applied = await _apply_children(kind, ctx, raw, desired)

    status, events = kind.status(parsed, resolution, Outcome(ctx.cache, previous, applied, conflicts))
    recheck = None
    if storage is not None:
        status, events, recheck = await _storage_status(
            kind.resource.kind, key, parsed, storage, admission, status=(status, events, previous)
        )
    await ctx.applier.apply_status(raw, status)
    await emit(ctx, raw, events)
    delays = [d for d in (CONFLICT_RETRY_SECONDS if conflicts else None, recheck) if d is not None]
    return Result.requeue_after(min(delays)) if delays else Result.done()


async def _apply_children(
    kind: WorkloadKind[W, R], ctx: ReconcileContext, raw: JSON, desired: list[JSON]
) -> dict[str, JSON]:
    """Apply ``desired`` and prune the children no longer in it; kind -> the API server's answer."""
    meta = raw.get("metadata") or {}
    if kind.announce_rollout:
        namespace = str(meta.get("namespace") or "")
        await announce_rollout(ctx, raw, namespace, _front_name(desired), _config_digest(desired))
    applied: dict[str, JSON] = {}
    # The children are independent objects: applied concurrently (they converge in any order).
    for child, result in zip(desired, await ctx.applier.apply_all(desired), strict=True):
        if result is not None:
            applied[child["kind"]] = result
    await delete_stale(ctx, str(meta.get("uid")), desired, kind.owned)
    return applied


async def _storage_status(
    kind: str,
    key: ObjectKey,
    workload: CustomResource,
    storage: StorageChecks,
    admission: Admission,
    *,
    status: tuple[JSON, Events, JSON],
) -> tuple[JSON, Events, float | None]:
    """``status`` (the kind's status, its Events, the previous status) with the gate's refusal and the
    ``SessionStorageReachable`` condition (a check that reached Redis stands for this reconcile's probe),
    and when to look again: a refused connection after its backoff, else after the probe period (a sixth
    of it while Redis does not answer)."""
    current, events, previous = status
    generation = workload.metadata.generation or 0
    spec = session_storage(workload)
    refusal = admission.refusal
    if refusal is not None:
        current, events = with_refusal(
            current, events, previous, generation, reason=refusal.reason, message=refusal.message
        )
    reach: Reachability | None
    if admission.checked and spec is not None and spec.address:
        reach = storage.monitor.record(kind, key, Reachability(spec.address, admission.problem))
    else:
        reach = await storage.monitor.observe(kind, key, spec)
    current, events = with_reachability(current, events, previous, generation, reach)
    if admission.retry_after is not None:  # the backoff alone: the reachability period would undercut it
        return current, events, admission.retry_after
    return current, events, storage.monitor.recheck_after(reach, storage.recheck)


def workload_controller(
    kind: WorkloadKind[W, R], manager: Manager, settings: ReconcilerSettings | None = None
) -> Controller:
    """The controller of ``kind``: For the kind, Owns its children (and the PodDisruptionBudget every
    workload kind may have, in the version the API server serves), Watches what it refers to (and the
    Secret holding its Redis password: a fixed password lets a refused connection roll out at once)."""
    settings = settings or ReconcilerSettings()
    kind = replace(kind, owned=(*kind.owned, settings.disruption_budget))
    storage = StorageChecks.of(manager, settings.redis_recheck_seconds)
    return Controller(
        name=kind.resource.kind.lower(),
        for_=kind.resource,
        reconcile=partial(reconcile_workload, kind, storage=storage),
        owns=list(kind.owned),
        watches=[*kind.setup(manager.cache), storage_secret_watch(manager.cache, kind.resource)],
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
