"""Validation of sessionStorage and rateLimiting in the proxy's and the gateway's config files."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from api.scaling_config import RateLimitConfig, SessionStorageConfig, split_address


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"provider": "redis"}, "needs sessionStorage.address"),
        ({"provider": "redis", "address": "redis"}, "is not host:port"),
        ({"provider": "redis", "address": "redis:99999"}, "outside 1-65535"),
        ({"provider": "redis", "address": "bad host:6379"}, "neither a host name nor an IP"),
        ({"provider": "etcd"}, "'memory' or 'redis'"),
        ({"provider": "memory", "db": -1}, "greater than or equal to 0"),
    ],
)
def test_bad_session_storage_names_the_problem(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SessionStorageConfig.model_validate(data)


def test_addresses() -> None:
    assert split_address("redis.cache.svc:6379") == ("redis.cache.svc", 6379)
    assert split_address("[::1]:6380") == ("::1", 6380)
    assert SessionStorageConfig.model_validate({"provider": "redis", "address": "10.0.0.1:6379"}).redis


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "at least one of shared, perUser or tools"),
        ({"shared": {"maxTokens": 0, "refillPeriod": "1m"}}, "greater than or equal to 1"),
        ({"perUser": {"maxTokens": -5, "refillPeriod": "1m"}}, "greater than or equal to 1"),
        ({"shared": {"maxTokens": 5, "refillPeriod": "soon"}}, "invalid duration"),
        ({"shared": {"maxTokens": 5, "refillPeriod": "0s"}}, "must be positive"),
        ({"tools": [{"name": "a"}]}, "set shared or perUser"),
    ],
)
def test_bad_rate_limits_name_the_problem(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RateLimitConfig.model_validate(data)


def test_per_user_limits_fail_closed_unless_told() -> None:
    bucket = {"maxTokens": 5, "refillPeriod": "1m"}
    assert RateLimitConfig.model_validate({"shared": bucket}).fails_open
    assert not RateLimitConfig.model_validate({"perUser": bucket}).fails_open
    assert RateLimitConfig.model_validate({"perUser": bucket, "failureMode": "open"}).fails_open
