"""Rate limiters with client-go's numbers: a token bucket and per-item exponential backoff."""

from __future__ import annotations

from collections.abc import Hashable

from controller.core.clock import Clock, MonotonicClock


class TokenBucket:
    """``golang.org/x/time/rate`` semantics: refill at ``qps``, hold at most ``burst``, reserve ahead.

    ``reserve()`` always takes a token, letting the balance go negative, and returns how long the
    caller must wait for it; so concurrent callers queue up fairly instead of polling.
    """

    def __init__(self, qps: float, burst: int, clock: Clock | None = None) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError(f"token bucket needs qps > 0 and burst >= 1, got qps={qps} burst={burst}")
        self.qps = qps
        self.burst = burst
        self._clock = clock or MonotonicClock()
        self._tokens = float(burst)
        self._last = self._clock.now()

    def reserve(self) -> float:
        """Take one token; return the seconds to wait before using it (0 when one was available)."""
        now = self._clock.now()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def pause(self, seconds: float) -> None:
        """No token for ``seconds`` (the server said Retry-After), then tokens at ``qps`` with no burst:
        callers throttled together retry one by one instead of all at once. Idempotent for concurrent
        pauses (they do not add up)."""
        now = self._clock.now()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens = min(self._tokens, -seconds * self.qps)

    async def acquire(self) -> float:
        """Wait for a token; return the time waited."""
        delay = self.reserve()
        if delay > 0:
            await self._clock.sleep(delay)
        return delay


class ItemExponentialBackoff:
    """Per-item ``base * 2**failures`` capped at ``cap`` (client-go: 5 ms, 1000 s)."""

    def __init__(self, base: float = 0.005, cap: float = 1000.0) -> None:
        self.base = base
        self.cap = cap
        self._failures: dict[Hashable, int] = {}

    def when(self, item: Hashable) -> float:
        """The delay for this failure of ``item``; counts the failure."""
        failures = self._failures.get(item, 0)
        self._failures[item] = failures + 1
        if failures > 62:  # 2**63 overflows in Go; the cap was reached long before
            return self.cap
        return min(self.cap, self.base * float(2**failures))

    def num_requeues(self, item: Hashable) -> int:
        return self._failures.get(item, 0)

    def forget(self, item: Hashable) -> None:
        self._failures.pop(item, None)


class DefaultControllerRateLimiter:
    """client-go's default: the max of per-item exponential backoff and a 10 qps / 100 burst bucket."""

    def __init__(
        self,
        clock: Clock | None = None,
        base: float = 0.005,
        cap: float = 1000.0,
        qps: float = 10.0,
        burst: int = 100,
    ) -> None:
        self.items = ItemExponentialBackoff(base, cap)
        self.bucket = TokenBucket(qps, burst, clock)

    def when(self, item: Hashable) -> float:
        return max(self.items.when(item), self.bucket.reserve())

    def num_requeues(self, item: Hashable) -> int:
        return self.items.num_requeues(item)

    def forget(self, item: Hashable) -> None:
        self.items.forget(item)
