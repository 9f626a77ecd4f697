"""Leader election on a coordination.k8s.io/v1 Lease, with client-go's algorithm and numbers.

A candidate takes over only after it has seen the *same* lease record unchanged for a whole lease
duration, measured on its own monotonic clock from when it last saw the record change (never from the
record's ``renewTime``, so clock skew between machines does not matter). The leader renews every
``retry_period``; if it cannot renew within ``renew_deadline`` it has lost and must stop.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from controller.core.client import ApiError, KubeClient
from controller.core.clock import Clock, MonotonicClock
from controller.core.resources import LEASE
from kube.transport import TransportError

log = structlog.get_logger("mcp-operator.leader")

JITTER = 1.2


@dataclass
class LeaderElectionConfig:
    """Lease name and timings (controller-runtime defaults 15 s / 10 s / 2 s)."""

    namespace: str
    name: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    release_on_cancel: bool = True

    def validate(self) -> None:
        if not self.lease_duration > self.renew_deadline > JITTER * self.retry_period > 0:
            raise ValueError(
                "leader election needs lease_duration > renew_deadline > 1.2 x retry_period > 0, got "
                f"{self.lease_duration} / {self.renew_deadline} / {self.retry_period}"
            )
        if not self.identity:
            raise ValueError("leader election needs a non-empty identity")


def micro_time(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """``acquire()`` blocks until this process leads; ``hold()`` returns when leadership is lost."""

    def __init__(
        self, client: KubeClient, config: LeaderElectionConfig, *, clock: Clock | None = None
    ) -> None:
        config.validate()
        self.client = client
        self.config = config
        self._clock = clock or MonotonicClock()
        self._observed: dict[str, Any] | None = None
        self._observed_rv = ""
        self._observed_at = 0.0
        self.is_leader = False
        self._gauge = client.metrics.leader_election_master_status.labels(config.name)
        self._gauge.set(0)
        self._log = log.bind(lease=f"{config.namespace}/{config.name}", identity=config.identity)

    async def acquire(self) -> None:
        """Try every ``retry_period`` (with jitter) until the lease is ours."""
        self._log.info("attempting to acquire leader lease")
        while not await self._try_acquire_or_renew():
            await self._clock.sleep(self.config.retry_period * (1 + random.random() * (JITTER - 1)))
        self._set_leader(True)
        self._log.info("acquired leader lease")

    async def hold(self) -> None:
        """Renew every ``retry_period``; return once renewing failed for ``renew_deadline``."""
        last_renew = self._clock.now()
        while True:
            await self._clock.sleep(self.config.retry_period)
            if await self._try_acquire_or_renew():
                last_renew = self._clock.now()
                continue
            if self._clock.now() - last_renew >= self.config.renew_deadline:
                self._set_leader(False)
                self._log.error("failed to renew the leader lease within the renew deadline; leadership lost")
                return

    async def release(self) -> None:
        """Give the lease up (clean shutdown) so a standby can take over at once."""
        if not self.is_leader or not self.config.release_on_cancel:
            self._set_leader(False)
            return
        self._set_leader(False)
        try:
            lease = await self.client.get(LEASE, self.config.namespace, self.config.name)
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.config.identity:
                return
            lease["spec"] = {
                **lease.get("spec", {}),
                "holderIdentity": "",
                "leaseDurationSeconds": 1,
                "renewTime": micro_time(),
            }
            await self.client.replace(LEASE, lease)
            self._log.info("released leader lease")
        except (ApiError, TransportError) as exc:
            self._log.warning("could not release the leader lease", error=str(exc))

    def _set_leader(self, leading: bool) -> None:
        self.is_leader = leading
        self._gauge.set(1 if leading else 0)

    async def _try_acquire_or_renew(self) -> bool:
        cfg = self.config
        now = micro_time()
        try:
            lease = await self.client.get(LEASE, cfg.namespace, cfg.name)
            if lease is None:
                spec = {
                    "holderIdentity": cfg.identity,
                    "leaseDurationSeconds": int(cfg.lease_duration),
                    "acquireTime": now,
                    "renewTime": now,
                    "leaseTransitions": 0,
                }
                created = await self.client.create(
                    LEASE, {"metadata": {"name": cfg.name, "namespace": cfg.namespace}, "spec": spec}
                )
                self._observe(created)
                return True
            record = dict(lease.get("spec") or {})
            rv = str(lease["metadata"].get("resourceVersion", ""))
            if record != self._observed:
                self._observe(lease)
            holder = record.get("holderIdentity") or ""
            if holder and holder != cfg.identity:
                if self._observed_at + cfg.lease_duration > self._clock.now():
                    return False  # someone else holds a lease still valid by our own clock
                self.client.metrics.leader_election_slowpath_total.labels(cfg.name).inc()
            spec = dict(record)
            if holder != cfg.identity:
                spec["acquireTime"] = now
                spec["leaseTransitions"] = int(record.get("leaseTransitions") or 0) + 1
            spec.update(
                holderIdentity=cfg.identity, leaseDurationSeconds=int(cfg.lease_duration), renewTime=now
            )
            lease["spec"] = spec
            lease["metadata"]["resourceVersion"] = rv
            updated = await self.client.replace(LEASE, lease)
            self._observe(updated)
            return True
        except ApiError as exc:
            if not exc.conflict:
                self._log.warning("leader lease request failed", status=exc.status, error=exc.message)
            return False
        except (TransportError, TimeoutError) as exc:
            self._log.warning("leader lease request failed", error=str(exc))
            return False

    def _observe(self, lease: dict[str, Any]) -> None:
        self._observed = dict(lease.get("spec") or {})
        self._observed_rv = str((lease.get("metadata") or {}).get("resourceVersion", ""))
        self._observed_at = self._clock.now()
