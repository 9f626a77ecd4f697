"""The gateway's per-backend health and circuit-breaker state machine, on an injected clock (no sleeps)."""

from __future__ import annotations

from dataclasses import dataclass

from api.vmcp_config import CircuitBreakerConfig
from gateway.vmcp.health import BackendHealth, CircuitBreaker, backend_status_entries


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


def _health(clock: Clock, *, enabled: bool = True, unhealthy: int = 2, open_after: int = 3) -> BackendHealth:
    config = CircuitBreakerConfig(enabled=enabled, failure_threshold=open_after, timeout=60)
    return BackendHealth("git", "http://git/mcp", CircuitBreaker(config, clock=clock), unhealthy)


def test_walks_healthy_unhealthy_open_half_open_and_back_to_healthy() -> None:
    clock = Clock()
    health = _health(clock)
    assert health.state == "unknown"
    health.connected = True
    health.record_success()
    assert (health.state, health.breaker.state) == ("ready", "closed")

    health.record_failure("connection refused")
    assert (health.state, health.breaker.state, health.listed) == ("degraded", "closed", True)
    health.record_failure("connection refused")
    assert (health.state, health.breaker.state, health.listed) == ("unavailable", "closed", False)
    assert health.breaker.allow()  # unhealthy is not open: the circuit has its own threshold
    health.record_failure("connection refused")
    assert (health.state, health.breaker.state) == ("unavailable", "open")
    assert not health.breaker.allow()

    clock.now += 59.9
    assert health.breaker.state == "open" and not health.breaker.allow()
    assert round(health.breaker.retry_in(), 1) == 0.1
    clock.now += 0.1
    assert (health.state, health.breaker.state, health.listed) == ("unavailable", "half-open", False)
    assert health.breaker.allow()  # the one trial ...
    assert not health.breaker.allow()  # ... and nobody else while it runs
    health.record_success()
    assert (health.state, health.breaker.state, health.consecutive_failures) == ("ready", "closed", 0)
    assert health.listed


def test_a_failed_half_open_trial_opens_the_circuit_for_another_full_duration() -> None:
    clock = Clock()
    health = _health(clock, open_after=1)
    health.connected = True
    health.record_failure("timeout")
    opened = health.breaker.opened_at
    clock.now += 60
    assert health.breaker.allow()
    health.record_failure("timeout again")
    assert health.breaker.state == "open" and health.breaker.opened_at == opened + 60
    clock.now += 30
    assert not health.breaker.allow()


def test_failures_while_open_count_but_do_not_extend_the_open_duration() -> None:
    clock = Clock()
    health = _health(clock, open_after=2)
    health.record_failure("x")
    health.record_failure("x")
    opened = health.breaker.opened_at
    clock.now += 30
    health.record_failure("reconnect refused")
    assert health.breaker.opened_at == opened and health.consecutive_failures == 3
    clock.now += 30
    assert health.breaker.state == "half-open"


def test_a_disabled_breaker_never_opens_but_the_unhealthy_threshold_still_applies() -> None:
    clock = Clock()
    health = _health(clock, enabled=False, unhealthy=3, open_after=1)
    health.connected = True
    for _ in range(10):
        health.record_failure("refused")
    assert health.breaker.state == "closed" and health.breaker.allow()
    assert health.state == "unavailable" and not health.listed
    (entry,) = backend_status_entries([health])
    assert "circuitBreakerState" not in entry and entry["consecutiveFailures"] == 10


def test_status_entries_carry_toolhives_circuit_fields() -> None:
    clock = Clock()
    health = _health(clock, open_after=1)
    health.connected = True
    health.record_failure("boom")
    (entry,) = backend_status_entries([health])
    assert entry["circuitBreakerState"] == "open"
    assert entry["consecutiveFailures"] == 1
    assert entry["lastError"] == "boom"
    assert entry["circuitLastChanged"].endswith("Z")
    health.record_success()
    (entry,) = backend_status_entries([health])
    assert entry["circuitBreakerState"] == "closed" and entry["health"] == "ready"
    assert entry["consecutiveFailures"] == 0 and "lastError" not in entry
