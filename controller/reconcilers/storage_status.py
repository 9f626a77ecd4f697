"""The ``SessionStorageReachable`` condition and metric of a workload whose sessions live in Redis.

While a workload's Redis does not answer, its pods keep serving (new sessions in each pod's memory, rate
limits by ``failureMode``: docs/scaling.md), so ``Ready`` does not change; this condition says why
sessions are not shared meanwhile. The reconcile asks :class:`~controller.reconcilers.redis_probe.RedisProbe`
and comes back sooner while Redis is down, so the condition clears soon after Redis is back. The status
write is skipped while the answer stays the same: a steady state costs probes, never API writes.

A new or changed connection that Redis refuses (``storage_gate``) is ``Accepted=False`` instead
(:func:`with_refusal`): the running children stay as they are.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from weakref import WeakKeyDictionary

from prometheus_client import CollectorRegistry, Counter, Gauge

from api.conditions import ACCEPTED
from api.scaling import SessionStorage
from api.scaling_config import SessionStorageConfig
from controller.core import ObjectKey, get_condition
from controller.reconcilers.children import JSON
from controller.reconcilers.redis_probe import RedisProbe
from controller.reconcilers.status import StatusBuilder
from controller.reconcilers.writes import Events

__all__ = ["SESSION_STORAGE_REACHABLE", "Reachability", "StorageMonitor", "with_reachability", "with_refusal"]

SESSION_STORAGE_REACHABLE = "SessionStorageReachable"
COMMAND_TIMEOUT = SessionStorageConfig().timeout
"""The pods' Redis command timeout (the CRD has no field for it): the probe waits as long as they do."""
DOWN_RECHECK_FRACTION = 6
"""While Redis does not answer, the workload is looked at again after this fraction of the period."""


@dataclass(frozen=True)
class Reachability:
    """One probe of a workload's Redis: ``problem`` is None when it answered."""

    address: str
    problem: str | None


def with_reachability(
    status: JSON, events: Events, previous: JSON, generation: int, reach: Reachability | None
) -> tuple[JSON, Events]:
    """``status`` with the condition set from ``reach`` (removed when the workload has no Redis)."""
    before = get_condition(previous.get("conditions") or [], SESSION_STORAGE_REACHABLE)
    builder = StatusBuilder(list(previous.get("conditions") or []), generation)
    builder.conditions = list(status.get("conditions") or [])
    if reach is None:
        builder.remove(SESSION_STORAGE_REACHABLE)
    elif reach.problem is None:
        # An Event for the recovery, none for the first answer (the expected case).
        recovered = before is not None and before.get("status") == "False"
        message = f"Redis at {reach.address} answers"
        builder.set(SESSION_STORAGE_REACHABLE, True, "RedisAnswers", message, event=recovered)
    else:
        message = (
            f"Redis at {reach.address} does not answer ({reach.problem}): until it does, new sessions stay "
            "in the pod that opened them and rate limits follow their failureMode"
        )
        builder.set(SESSION_STORAGE_REACHABLE, False, "RedisUnreachable", message)
    return {**status, "conditions": builder.conditions}, [*events, *builder.events]


def with_refusal(
    status: JSON, events: Events, previous: JSON, generation: int, *, reason: str, message: str
) -> tuple[JSON, Events]:
    """``status`` (the kind's, computed with nothing applied) with ``Accepted=False`` for a refused Redis
    connection and its message as the status message; the kind's own Event about accepting is dropped."""
    builder = StatusBuilder(list(previous.get("conditions") or []), generation)
    accepted = get_condition(status.get("conditions") or [], ACCEPTED) or {}
    # Start from the previous Accepted (not the kind's True), so that a refusal repeated by every retry
    # keeps its transition time and the status write is skipped.
    prior = get_condition(builder.previous, ACCEPTED)
    builder.conditions = [
        dict(prior) if c.get("type") == ACCEPTED and prior else c
        for c in status.get("conditions") or []
        if c.get("type") != ACCEPTED or prior
    ]
    builder.set(ACCEPTED, False, reason, message)
    kept = [event for event in events if event[1] != accepted.get("reason")]
    return {**status, "message": message, "conditions": builder.conditions}, [*kept, *builder.events]


class StorageMonitor:
    """The probe and the ``mcp_operator_session_storage_reachable`` gauge of one operator process."""

    _by_registry: WeakKeyDictionary[CollectorRegistry, StorageMonitor] = WeakKeyDictionary()

    def __init__(self, registry: CollectorRegistry, probe: RedisProbe | None = None) -> None:
        self.probe = probe or RedisProbe()
        self.reachable = Gauge(
            "mcp_operator_session_storage_reachable",
            "1 while the workload's sessionStorage Redis answers the operator's PING, 0 while it does not",
            ("kind", "namespace", "name"),
            registry=registry,
        )
        self.checks = Counter(
            "mcp_operator_session_storage_checks",
            "Checks of a new or changed sessionStorage Redis connection before it rolls out (connect, "
            "AUTH, SELECT, PING) by outcome: admitted, unreachable, auth_failed, database_refused, "
            "password_not_found",
            ("outcome",),
            registry=registry,
        )

    @classmethod
    def of(cls, registry: CollectorRegistry) -> StorageMonitor:
        """The monitor of the process whose metrics are in ``registry`` (one gauge per registry)."""
        monitor = cls._by_registry.get(registry)
        if monitor is None:
            monitor = cls._by_registry[registry] = cls(registry)
        return monitor

    async def observe(self, kind: str, key: ObjectKey, storage: SessionStorage | None) -> Reachability | None:
        """Probe the workload's Redis (None, and no metric, when its sessions are in memory)."""
        if storage is None or storage.provider != "redis" or not storage.address:
            self.forget(kind, key)
            return None
        problem = await self.probe.problem(storage.address, key.namespace, COMMAND_TIMEOUT)
        return self.record(kind, key, Reachability(storage.address, problem))

    def record(self, kind: str, key: ObjectKey, reach: Reachability) -> Reachability:
        """Set the workload's gauge from ``reach`` (a probe's, or a rollout check's) and return it."""
        self.reachable.labels(kind, key.namespace, key.name).set(0 if reach.problem else 1)
        return reach

    def forget(self, kind: str, key: ObjectKey) -> None:
        """Drop the workload's gauge (deleted, or no longer on Redis)."""
        with contextlib.suppress(KeyError):
            self.reachable.remove(kind, key.namespace, key.name)

    @staticmethod
    def recheck_after(reach: Reachability | None, seconds: float) -> float | None:
        """When to probe again: ``seconds`` while Redis answers, a sixth of it while it does not."""
        if reach is None:
            return None
        return seconds if reach.problem is None else seconds / DOWN_RECHECK_FRACTION
