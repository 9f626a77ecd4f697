"""Token-bucket rate limits on tool calls, shared by replicas through Redis (docs/scaling.md)."""

from .buckets import BucketStore, Claim, MemoryBuckets, RedisBuckets
from .guard import RATE_LIMITED_CODE, RateLimiter, RateLimitGuard, rate_limited_body

__all__ = [
    "RATE_LIMITED_CODE",
    "BucketStore",
    "Claim",
    "MemoryBuckets",
    "RateLimitGuard",
    "RateLimiter",
    "RedisBuckets",
    "rate_limited_body",
]
