"""Backend health: a circuit breaker per backend and the status entries reported for it. No I/O.

The breaker is the usual closed / open / half-open one (docs/vmcp.md, "Runtime behaviour"); time comes
from an injected monotonic clock so tests run without sleeping.
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
    """Consecutive-failure breaker with a half-open single trial."""

    config: CircuitBreakerConfig
    clock: Callable[[], float] = time.monotonic
    state: BreakerState = "closed"
    consecutive_failures: int = 0
    opened_at: float | None = None
    changed_at: float = field(default=0.0)
    _trial_in_flight: bool = False

    def allow(self) -> bool:
        """May a request go to the backend now? In half-open, only the first caller gets True."""
        if not self.config.enabled:
            return True
        if self.state == "open":
            assert self.opened_at is not None
            if self.clock() - self.opened_at < self.config.timeout:
                return False
            self._set("half-open")
        if self.state == "half-open":
            if self._trial_in_flight:
                return False
            self._trial_in_flight = True
        return True

    def record_success(self) -> None:
        self.consecutive_failures = 0
        self._trial_in_flight = False
        if self.state != "closed":
            self.opened_at = None
            self._set("closed")

    def record_failure(self) -> None:
        self.consecutive_failures += 1
        self._trial_in_flight = False
        if not self.config.enabled:
            return
        if self.state == "half-open" or self.consecutive_failures >= self.config.failure_threshold:
            self.opened_at = self.clock()
            self._set("open")

    def _set(self, state: BreakerState) -> None:
        if state != self.state:
            self.state = state
            self.changed_at = self.clock()


@dataclass
class BackendHealth:
    """What the gateway knows about one backend, as reported on /status and in the resource status."""

    name: str
    url: str
    breaker: CircuitBreaker
    connected: bool = False
    last_error: str | None = None
    last_check_wall: float | None = None
    """Wall-clock time (epoch seconds) of the last probe, for lastHealthCheck."""
    tool_count: int = 0
    protocol_version: str | None = None

    @property
    def state(self) -> HealthState:
        if self.last_check_wall is None and not self.connected:
            return "unknown"
        if not self.connected or self.breaker.state == "open":
            return "unavailable"
        if self.breaker.state == "half-open" or self.breaker.consecutive_failures > 0:
            return "degraded"
        return "ready"


def _rfc3339(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def backend_status_entries(backends: Sequence[BackendHealth]) -> list[dict[str, Any]]:
    """The VirtualMCPServer ``status.backends`` list (sorted by name): name, url, health, lastError,
    toolCount, plus breaker details. Keys are camelCase; absent values are omitted."""
    entries: list[dict[str, Any]] = []
    for backend in sorted(backends, key=lambda b: b.name):
        entry: dict[str, Any] = {
            "name": backend.name,
            "url": backend.url,
            "health": backend.state,
            "toolCount": backend.tool_count,
            "circuitBreakerState": backend.breaker.state,
            "consecutiveFailures": backend.breaker.consecutive_failures,
        }
        if backend.last_error is not None:
            entry["lastError"] = backend.last_error
        if (checked := _rfc3339(backend.last_check_wall)) is not None:
            entry["lastHealthCheck"] = checked
        if backend.protocol_version is not None:
            entry["mcpRevision"] = backend.protocol_version
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
