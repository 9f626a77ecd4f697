"""Token buckets in memory, the buckets a call claims, ToolHive's 429 body, and session records."""

from __future__ import annotations

import json

import pytest

from api.scaling_config import RateLimitBucket, RateLimitConfig
from gateway.observability import Auditor, RequestMetrics
from gateway.ratelimit import Claim, MemoryBuckets, RateLimiter, rate_limited_body
from gateway.ratelimit.buckets import retry_after_seconds
from gateway.sessions_store import SessionRecord
from tests.support.clock import FakeClock

TEN_PER_MINUTE = RateLimitBucket(max_tokens=10, refill_period=60.0)


async def test_a_bucket_admits_its_burst_then_refills_evenly() -> None:
    clock = FakeClock()
    buckets = MemoryBuckets(clock)
    claim = [Claim("u", TEN_PER_MINUTE)]
    assert [await buckets.take(claim) for _ in range(10)] == [0.0] * 10
    assert await buckets.take(claim) == pytest.approx(6.0)  # one token every 6 s
    clock.now += 3
    assert await buckets.take(claim) == pytest.approx(3.0)
    clock.now += 3
    assert await buckets.take(claim) == 0.0
    clock.now += 3600  # never more than the capacity
    assert [await buckets.take(claim) for _ in range(11)].count(0.0) == 10


async def test_a_call_takes_from_every_bucket_or_from_none() -> None:
    buckets = MemoryBuckets(FakeClock())
    one = RateLimitBucket(max_tokens=1, refill_period=60.0)
    assert await buckets.take([Claim("tool", one)]) == 0.0
    assert await buckets.take([Claim("user", TEN_PER_MINUTE), Claim("tool", one)]) > 0
    assert "user" not in buckets.levels  # refused: the user's bucket was not touched


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert [retry_after_seconds(s) for s in (0.01, 1.0, 1.2, 59.9)] == [1, 1, 2, 60]


def test_the_buckets_of_a_call() -> None:
    config = RateLimitConfig.model_validate(
        {
            "shared": {"maxTokens": 100, "refillPeriod": "1m"},
            "perUser": {"maxTokens": 10, "refillPeriod": "1m"},
            "tools": [{"name": "search", "perUser": {"maxTokens": 2, "refillPeriod": "10s"}}],
        }
    )
    limiter = RateLimiter(
        config, MemoryBuckets(), key_prefix="p:", metrics=RequestMetrics(), auditor=Auditor()
    )
    assert [c.key for c in limiter.claims("search", "alice")] == [
        "p:shared",
        "p:user:alice",
        "p:user-tool:search:alice",
    ]
    assert [c.key for c in limiter.claims("other", "bob")] == ["p:shared", "p:user:bob"]


def test_the_rate_limited_body_is_toolhives() -> None:
    assert json.loads(rate_limited_body(7, 3)) == {
        "jsonrpc": "2.0",
        "id": 7,
        "error": {"code": 429, "message": "Rate limit exceeded", "data": {"retryAfterSeconds": 3}},
    }
    assert "id" not in json.loads(rate_limited_body(None, 1))


def test_a_session_record_survives_the_round_trip_and_junk_reads_as_absent() -> None:
    record = SessionRecord(
        "2025-11-25", {"capabilities": {}}, {"client_id": "c", "issuer": None, "subject": "s"}
    )
    assert SessionRecord.loads(record.dumps()) == record
    assert SessionRecord.loads(b"not json") is None
    assert SessionRecord.loads(b'{"v": 3}') is None
