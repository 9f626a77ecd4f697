"""Token buckets: in Redis (one atomic script, one round trip, shared by every replica) or in memory.

A bucket holds at most ``maxTokens`` tokens and gains ``maxTokens / refillPeriod`` per second; a call
takes one token from every bucket that applies to it (server-wide, the caller's, the tool's, the
caller's for that tool) or, when one of them is empty, from none, and learns how long until it would
be admitted. Redis buckets read the Redis server's clock, so replicas with skewed clocks agree; a
bucket's key expires two refill periods after its last use.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from api.scaling_config import RateLimitBucket
from gateway.sessions_store.link import RedisLink

__all__ = ["TAKE_SCRIPT", "BucketStore", "Claim", "MemoryBuckets", "RedisBuckets", "retry_after_seconds"]


@dataclass(frozen=True)
class Claim:
    """One bucket a call must take a token from."""

    key: str
    bucket: RateLimitBucket


class BucketStore(Protocol):
    async def take(self, claims: Sequence[Claim]) -> float:
        """0 when a token was taken from every bucket, else the seconds until one would be admitted;
        raises :class:`gateway.sessions_store.link.StoreUnavailableError` when the store does not answer."""
        ...


TAKE_SCRIPT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local levels = {}
local wait = 0
for i = 1, #KEYS do
  local capacity = tonumber(ARGV[2 * i - 1])
  local period = tonumber(ARGV[2 * i])
  local state = redis.call('HMGET', KEYS[i], 'tokens', 'at')
  local level = tonumber(state[1])
  local at = tonumber(state[2])
  if level == nil or at == nil then
    level = capacity
  else
    level = math.min(capacity, level + math.max(0, now - at) * capacity / period)
  end
  levels[i] = level
  if level < 1 then
    wait = math.max(wait, (1 - level) * period / capacity)
  end
end
if wait > 0 then
  return tostring(wait)
end
for i = 1, #KEYS do
  local period = tonumber(ARGV[2 * i])
  redis.call('HSET', KEYS[i], 'tokens', tostring(levels[i] - 1), 'at', now)
  redis.call('PEXPIRE', KEYS[i], 2 * period)
end
return '0'
"""
"""KEYS: the buckets; ARGV: per bucket its capacity and refill period in milliseconds. Returns the
milliseconds to wait (as a string: Lua numbers would be truncated to integers) or ``'0'``."""


class RedisBuckets:
    """Buckets shared by every replica through Redis (see the module docstring)."""

    def __init__(self, link: RedisLink) -> None:
        self.link = link
        self.script = link.client.register_script(TAKE_SCRIPT)

    async def take(self, claims: Sequence[Claim]) -> float:
        keys = [claim.key for claim in claims]
        args: list[float] = []
        for claim in claims:
            args += [claim.bucket.max_tokens, claim.bucket.refill_period * 1000]
        wait = await self.link.call("ratelimit", lambda: self.script(keys=keys, args=args))
        return float(wait) / 1000


class MemoryBuckets:
    """Buckets of this process only: with N replicas the effective limit is N times the configured one."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.levels: dict[str, tuple[float, float, float]] = {}
        """key -> (tokens, when, forgotten after): a bucket unused for two refill periods is full."""

    async def take(self, claims: Sequence[Claim]) -> float:
        now = self.clock()
        levels = []
        wait = 0.0
        for claim in claims:
            capacity, period = claim.bucket.max_tokens, claim.bucket.refill_period
            tokens, at, _ = self.levels.get(claim.key, (float(capacity), now, 0.0))
            level = min(capacity, tokens + max(0.0, now - at) * capacity / period)
            levels.append(level)
            if level < 1:
                wait = max(wait, (1 - level) * period / capacity)
        if wait > 0:
            return wait
        for claim, level in zip(claims, levels, strict=True):
            self.levels[claim.key] = (level - 1, now, now + 2 * claim.bucket.refill_period)
        if len(self.levels) > 100_000:
            self.levels = {k: v for k, v in self.levels.items() if v[2] > now}
        return 0.0


def retry_after_seconds(wait: float) -> int:
    """The ``Retry-After`` value: whole seconds, at least 1."""
    return max(1, math.ceil(wait))
