"""Backend health: the per-backend health and circuit-breaker state machine, and the status entries
reported for it. No I/O.

Every probe, connect and routed call of a backend ends in :meth:`BackendHealth.record_success` or
:meth:`BackendHealth.record_failure`. Consecutive failures make the backend ``degraded`` and, from
``unhealthyThreshold`` on, ``unavailable`` (its tools leave the aggregated list). The circuit breaker
(ToolHive's ``closed`` / ``open`` / ``half-open``) opens after ``failureThreshold`` consecutive failures;
while open, calls are refused at once; once ``timeout`` has passed it is half-open and the next
:meth:`CircuitBreaker.allow` (the gateway's health probe) is the one trial that closes it or opens it
again. Time comes from an injected monotonic clock so
tests run without sleeping (docs/vmcp.md, "Failure handling").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from api.vmcp_config import CircuitBreakerConfig

__all__ = [
    "BackendHealth",
    "BreakerState",
    "CircuitBreaker",
    "HealthState",
    "backend_status_entries",
    "overall_phase",
]

BreakerState = Literal["closed", "open", "half-open"]
HealthState = Literal["ready", "degraded", "unavailable", "unknown"]


@dataclass
class CircuitBreaker:
    """Consecutive-failure breaker; half-open once the open duration has passed, one trial at a time."""

    config: CircuitBreakerConfig
    clock: Callable[[], float] = time.monotonic
    consecutive_failures: int = 0
    opened_at: float | None = None
    """Clock time the circuit opened; None while it is closed."""
    changed_at: float | None = None
    """Clock time of the last state change (None before the first)."""
    _trial_in_flight: bool = False

    @property
    def state(self) -> BreakerState:
        if self.opened_at is None:
            return "closed"
        return "open" if self.clock() - self.opened_at < self.config.timeout else "half-open"

    def retry_in(self) -> float:
        """Seconds until the circuit turns half-open (0 when it is not open)."""
        if self.opened_at is None:
            return 0.0
        return max(0.0, self.opened_at + self.config.timeout - self.clock())

    def allow(self) -> bool:
        """May a request go to the backend now? Half-open lets exactly one trial through."""
        if self.opened_at is None or not self.config.enabled:
            return True
        if self.state == "open" or self._trial_in_flight:
            return False
        self._trial_in_flight = True
        return True

    def record_success(self) -> None:
        self.consecutive_failures = 0
        self._trial_in_flight = False
        if self.opened_at is not None:
            self.opened_at = None
            self.changed_at = self.clock()

    def record_failure(self) -> None:
        """Count a failure; open at the threshold, and again when a half-open trial fails (a failure
        while open changes nothing but the count)."""
        self.consecutive_failures += 1
        self._trial_in_flight = False
        if not self.config.enabled:
            return
        state = self.state
        if state == "half-open" or (
            state == "closed" and self.consecutive_failures >= self.config.failure_threshold
        ):
            self.opened_at = self.changed_at = self.clock()


@dataclass
class BackendHealth:
    """What the gateway knows about one backend, as reported on /status and in the resource status."""

    name: str
    url: str
    breaker: CircuitBreaker
    unhealthy_threshold: int = 3
    connected: bool = False
    last_error: str | None = None
    last_check_wall: float | None = None
    """Wall-clock time (epoch seconds) of the last probe, for lastHealthCheck."""
    changed_wall: float | None = field(default=None)
    """Wall-clock time of the circuit's last state change, for circuitLastChanged."""
    tool_count: int = 0
    protocol_version: str | None = None

    @property
    def consecutive_failures(self) -> int:
        return self.breaker.consecutive_failures

    @property
    def state(self) -> HealthState:
        failures = self.breaker.consecutive_failures
        if self.last_check_wall is None and not self.connected:
            return "unknown"
        circuit = self.breaker.state if self.breaker.config.enabled else "closed"
        if failures >= self.unhealthy_threshold or circuit == "open":
            return "unavailable"
        if failures > 0 or not self.connected or circuit == "half-open":
            return "degraded"
        return "ready"

    @property
    def listed(self) -> bool:
        """Are this backend's tools in the aggregated list and its calls forwarded? Not once it is
        unhealthy or its circuit opened, until a probe or call succeeds (half-open is not enough)."""
        breaker = self.breaker
        return self.consecutive_failures < self.unhealthy_threshold and (
            breaker.opened_at is None or not breaker.config.enabled
        )

    def record_success(self) -> None:
        self._track(self.breaker.record_success)
        self.last_error = None
        self.last_check_wall = time.time()

    def record_failure(self, message: str) -> None:
        self._track(self.breaker.record_failure)
        self.last_error = message
        self.last_check_wall = time.time()

    def _track(self, record: Callable[[], None]) -> None:
        before = self.breaker.changed_at
        record()
        if self.breaker.changed_at != before:
            self.changed_wall = time.time()


def _rfc3339(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def backend_status_entries(backends: Sequence[BackendHealth]) -> list[dict[str, Any]]:
    """The gateway's ``/status`` backend entries (sorted by name): name, url, health, lastError,
    toolCount, consecutiveFailures and, with the breaker enabled, ToolHive's ``circuitBreakerState`` and
    ``circuitLastChanged``. Keys are camelCase; absent values are omitted."""
    entries: list[dict[str, Any]] = []
    for backend in sorted(backends, key=lambda b: b.name):
        entry: dict[str, Any] = {
            "name": backend.name,
            "url": backend.url,
            "health": backend.state,
            "toolCount": backend.tool_count,
            "consecutiveFailures": backend.consecutive_failures,
        }
        if backend.breaker.config.enabled:
            entry["circuitBreakerState"] = backend.breaker.state
        optional = {
            "lastError": backend.last_error,
            "lastHealthCheck": _rfc3339(backend.last_check_wall),
            "circuitLastChanged": _rfc3339(backend.changed_wall) if backend.breaker.config.enabled else None,
            "mcpRevision": backend.protocol_version,
        }
        entry.update({key: value for key, value in optional.items() if value is not None})
        entries.append(entry)
    return entries


def overall_phase(backends: Sequence[BackendHealth]) -> Literal["Ready", "Degraded", "Failed", "Pending"]:
    """``Ready`` when all backends are ready, ``Failed`` when none is routable, ``Degraded`` otherwise;
    ``Pending`` before the first check. A gateway without backends is Ready (it serves empty lists)."""
    if not backends:
        return "Ready"
    states = [b.state for b in backends]
    if all(s == "unknown" for s in states):
        return "Pending"
    if all(s == "ready" for s in states):
        return "Ready"
    if all(s in ("unavailable", "unknown") for s in states):
        return "Failed"
    return "Degraded"
