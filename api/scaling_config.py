"""The data plane's settings for running several replicas: session storage and rate limits.

One shape for the proxy's config file (:class:`api.proxy_config.ProxyConfig`) and the gateway's
(:class:`api.vmcp_config.VMCPConfig`), keyed as ToolHive keys them (``sessionStorage``, ``rateLimiting``)
so a ToolHive manifest's blocks port unchanged. The file never holds the Redis password: ``passwordRef``
names the environment variable (or Secret file) it is read from, as every secret of these files.
What each setting does across replicas and under faults: docs/scaling.md.

Shape::

    "sessionStorage": {"provider": "redis", "address": "redis.ns.svc:6379", "db": 0,
                       "keyPrefix": "mcp:", "passwordRef": {"env": "REDIS_PASSWORD"}, "timeout": "250ms"}
    "rateLimiting": {"shared": {"maxTokens": 100, "refillPeriod": "1m"},
                     "perUser": {"maxTokens": 10, "refillPeriod": "1m"},
                     "tools": [{"name": "search", "perUser": {"maxTokens": 2, "refillPeriod": "10s"}}],
                     "failureMode": "closed"}
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from api.auth_config import SecretValueSource
from api.config_model import ConfigFileModel
from api.durations import Duration

__all__ = [
    "RateLimitBucket",
    "RateLimitConfig",
    "SessionStorageConfig",
    "ToolRateLimit",
    "split_address",
]

_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.\-]{0,251}[A-Za-z0-9])?\Z")


def split_address(address: str) -> tuple[str, int]:
    """``(host, port)`` of a Redis ``host:port`` address; ValueError saying what is wrong."""
    host, sep, port_text = address.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"address {address!r} is not host:port (e.g. redis.cache.svc:6379)")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ValueError(f"address {address!r}: port {port} is outside 1-65535")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOST.match(host):
            raise ValueError(f"address {address!r}: {host!r} is neither a host name nor an IP") from None
    return host, port


class _Model(ConfigFileModel):
    """This file's models."""


class SessionStorageConfig(_Model):
    """Where 2025-11-25 sessions live: this process's memory, or Redis shared by every replica."""

    provider: Literal["memory", "redis"] = "memory"
    address: str | None = None
    """``host:port`` of Redis; required with ``provider: redis``."""
    db: int = Field(default=0, ge=0, le=15)
    key_prefix: str = ""
    """Prepended to every key (several workloads can share one Redis)."""
    password_ref: SecretValueSource | None = None
    """Where the password is read (an environment variable or a mounted Secret file); none: no AUTH."""
    timeout: Duration = 1.0
    """Connect and reply deadline of one Redis command; past it the request goes on as the fault rules
    say (docs/scaling.md) instead of waiting."""

    @field_validator("address")
    @classmethod
    def _check_address(cls, address: str | None) -> str | None:
        if address is not None:
            split_address(address)
        return address

    @model_validator(mode="after")
    def _check_provider(self) -> SessionStorageConfig:
        if self.provider == "redis" and not self.address:
            raise ValueError("sessionStorage.provider 'redis' needs sessionStorage.address (host:port)")
        return self

    @property
    def redis(self) -> bool:
        return self.provider == "redis"


class RateLimitBucket(_Model):
    """A token bucket: ``maxTokens`` requests at once (the burst), refilled evenly over ``refillPeriod``."""

    max_tokens: int = Field(ge=1)
    refill_period: Duration

    @property
    def per_second(self) -> float:
        return self.max_tokens / self.refill_period


class ToolRateLimit(_Model):
    """Limits of one tool, on top of the server-wide ones."""

    name: str = Field(min_length=1)
    shared: RateLimitBucket | None = None
    per_user: RateLimitBucket | None = None

    @model_validator(mode="after")
    def _check_some(self) -> ToolRateLimit:
        if self.shared is None and self.per_user is None:
            raise ValueError(f"rateLimiting.tools[{self.name}]: set shared or perUser")
        return self


class RateLimitConfig(_Model):
    """ToolHive's ``rateLimiting`` on ``tools/call`` requests, plus what to do while Redis is down."""

    shared: RateLimitBucket | None = None
    per_user: RateLimitBucket | None = None
    tools: tuple[ToolRateLimit, ...] = ()
    failure_mode: Literal["open", "closed"] | None = None
    """While the bucket store (Redis) does not answer: ``open`` admits calls, ``closed`` answers 429.
    Unset: closed when a per-user limit is configured, open otherwise."""

    @model_validator(mode="after")
    def _check_some(self) -> RateLimitConfig:
        if self.shared is None and self.per_user is None and not self.tools:
            raise ValueError("rateLimiting: set at least one of shared, perUser or tools")
        names = [tool.name for tool in self.tools]
        if len(set(names)) != len(names):
            raise ValueError("rateLimiting.tools lists a tool twice")
        return self

    @property
    def fails_open(self) -> bool:
        if self.failure_mode is not None:
            return self.failure_mode == "open"
        return self.per_user is None and all(tool.per_user is None for tool in self.tools)
