"""What a proxy or gateway process needs to run as one of several replicas, built from its config.

:func:`replica_support` turns ``sessionStorage`` and ``rateLimiting`` into the front's pieces: the
shared session store (:mod:`gateway.sessions_store`) and the rate-limit guard (:mod:`gateway.ratelimit`),
both on one Redis connection pool. With ``provider: memory`` and no ``rateLimiting`` it returns nothing
to install: the front's hot path stays as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp

from api.scaling_config import RateLimitConfig, SessionStorageConfig
from gateway.observability import Auditor, RequestMetrics
from gateway.ratelimit import BucketStore, MemoryBuckets, RateLimiter, RateLimitGuard, RedisBuckets
from gateway.sessions_store import RedisLink, SessionStore

__all__ = ["ReplicaSupport", "replica_support"]


@dataclass
class ReplicaSupport:
    """The pieces :func:`gateway.front.build_front_app` installs (see the module docstring)."""

    link: RedisLink | None = None
    session_store: SessionStore | None = None
    rate_limit: Callable[[ASGIApp], ASGIApp] | None = None
    limiter: RateLimiter | None = None
    """The rate limits' buckets (also taken by each tool call of a code-mode script)."""

    async def aclose(self) -> None:
        if self.link is not None:
            await self.link.aclose()


def replica_support(
    session_storage: SessionStorageConfig,
    rate_limiting: RateLimitConfig | None,
    *,
    name: str,
    metrics: RequestMetrics,
    auditor: Auditor,
    max_body_bytes: int,
    session_idle_timeout: float | None,
) -> ReplicaSupport | None:
    """The front's replica pieces, or None when there is nothing to install."""
    if not session_storage.redis and rate_limiting is None:
        return None
    link = RedisLink.for_sessions(session_storage, metrics.registry) if session_storage.redis else None
    support = ReplicaSupport(link=link)
    if link is not None:
        ttl = session_idle_timeout if session_idle_timeout is not None else 24 * 3600.0
        support.session_store = SessionStore(link, ttl_seconds=ttl, registry=metrics.registry)
    if rate_limiting is not None:
        buckets: BucketStore = RedisBuckets(link) if link is not None else MemoryBuckets()
        prefix = link.key("ratelimit", name, "") if link is not None else ""
        limiter = RateLimiter(rate_limiting, buckets, key_prefix=prefix, metrics=metrics, auditor=auditor)
        support.limiter = limiter

        def rate_limit(app: ASGIApp) -> ASGIApp:
            return RateLimitGuard(app, limiter, max_body_bytes=max_body_bytes)

        support.rate_limit = rate_limit
    return support
