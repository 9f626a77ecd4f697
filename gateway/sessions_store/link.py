"""One Redis connection pool per process, with a bounded wait and a memory of being down.

Every Redis command of the data plane (session records, rate-limit buckets) goes through
:meth:`RedisLink.call`: it waits at most ``sessionStorage.timeout`` for an answer, counts the outcome
and, after a failure, answers :class:`StoreUnavailableError` at once for :data:`RETRY_SECONDS` instead of
making every request wait for the same dead server (docs/scaling.md, "Faults").
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter, Gauge
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from api.scaling_config import SessionStorageConfig, split_address
from gateway.auth.secrets import SecretReader

__all__ = ["RETRY_SECONDS", "RedisLink", "StoreUnavailableError", "redis_client"]

RETRY_SECONDS = 1.0
"""After a failed command, how long commands are refused locally before Redis is tried again."""

T = TypeVar("T")


class StoreUnavailableError(Exception):
    """Redis did not answer in time (or refused): the caller applies its fault rule."""


class RedisLink:
    """The process's Redis client (see the module docstring)."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        timeout: float,
        prefix: str,
        registry: CollectorRegistry | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timeout = timeout
        self.prefix = prefix
        self.client = client
        self.clock = clock
        self.refused_until = 0.0
        self.up = Gauge(
            "mcp_redis_up",
            "1 while the data plane's Redis answers, 0 after a failed command",
            registry=registry,
        )
        self.up.set(1)
        commands = Counter(
            "mcp_redis_commands",
            "Redis round trips of the data plane by purpose and outcome (ok, error, skipped while down)",
            ["purpose", "outcome"],
            registry=registry,
        )
        self._outcomes = commands
        self.round_trips = 0
        """Round trips made (for the benchmark's count per request)."""

    @classmethod
    def for_sessions(cls, config: SessionStorageConfig, registry: CollectorRegistry | None) -> RedisLink:
        """The link of ``sessionStorage`` (sessions and rate-limit buckets)."""
        assert config.address is not None  # the config model requires it with provider redis
        host, port = split_address(config.address)
        return cls(
            redis_client(host, port, db=config.db, password=_password(config), timeout=config.timeout),
            timeout=config.timeout,
            prefix=config.key_prefix,
            registry=registry,
        )

    @property
    def available(self) -> bool:
        return self.clock() >= self.refused_until

    async def call(self, purpose: str, command: Callable[[], Awaitable[T]]) -> T:
        """``command()``'s answer, or :class:`StoreUnavailableError` within the timeout (never longer)."""
        if not self.available:
            self._outcomes.labels(purpose, "skipped").inc()
            raise StoreUnavailableError("Redis was unreachable moments ago")
        self.round_trips += 1
        try:
            with anyio.fail_after(self.timeout * 2):  # connect + reply, should the socket timeouts not fire
                result = await command()
        except (RedisError, OSError, TimeoutError) as exc:
            self.refused_until = self.clock() + RETRY_SECONDS
            self.up.set(0)
            self._outcomes.labels(purpose, "error").inc()
            raise StoreUnavailableError(f"Redis: {exc.__class__.__name__}: {exc}") from exc
        self.up.set(1)
        self._outcomes.labels(purpose, "ok").inc()
        return result

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    async def aclose(self) -> None:
        await self.client.aclose()


def redis_client(
    host: str, port: int, *, db: int, timeout: float, password: str | None, **options: object
) -> aioredis.Redis:
    """A client making one try per command: the deadline is the configured timeout, not retries."""
    return aioredis.Redis(
        host=host,
        port=port,
        db=db,
        password=password,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
        **options,  # type: ignore[arg-type]
    )


def _password(config: SessionStorageConfig) -> str | None:
    """The Redis password, read once at start (a rotated password takes a restart, as a new address)."""
    if config.password_ref is None:
        return None
    return SecretReader(config.password_ref, field="sessionStorage.passwordRef").read()
