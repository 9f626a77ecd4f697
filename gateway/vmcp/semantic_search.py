"""The semantic side of the optimizer's ``find_tool``: the tools' embeddings, computed once per catalogue,
and the query's, per ``find_tool`` (:mod:`gateway.backends.embeddings` asks the service).

The tools' vectors are kept by the text embedded (:func:`gateway.vmcp.hybrid_ranking.tool_text`), so a
catalogue change embeds only the tools that are new or changed, in batches; vectors of tools gone are
dropped, and all of them when the service, its API or its model changes. Concurrent ``find_tool`` calls
wait for one another's catalogue embedding rather than each asking for it.

Ranking is not a security decision, so the service failing fails soft: :meth:`SemanticSearch.nearest`
answers None, ``find_tool`` answers from the keywords alone, and the gateway counts it
(``vmcp_optimizer_keyword_fallbacks_total``, plus every request's outcome and duration in
``vmcp_embedding_requests_total`` / ``vmcp_embedding_request_duration_seconds``) and logs one warning per
:data:`WARN_INTERVAL`. One ``find_tool`` waits for the service at most ``embeddingServiceTimeout`` in all.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

import httpx2
import structlog
from mcp_types import Tool
from prometheus_client import CollectorRegistry, Counter, Histogram

from api.vmcp_config import OptimizerConfig
from gateway.backends.embeddings import (
    EmbeddingEndpoint,
    EmbeddingError,
    EmbeddingSession,
    embedding_client,
    embedding_session,
)

from .hybrid_ranking import Vector, nearest, tool_text, unit

__all__ = ["WARN_INTERVAL", "EmbeddingMetrics", "SemanticSearch"]

log = structlog.get_logger("gateway.vmcp.semantic_search")

WARN_INTERVAL = 60.0
"""Seconds between two warnings of a failing embedding service (the metrics count every failure)."""
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class EmbeddingMetrics:
    """The embedding service's collectors (see the module docstring)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "vmcp_embedding_requests",
            "Requests to the optimizer's embedding service, by outcome (ok, error, timeout).",
            ["outcome"],
            registry=registry,
        )
        self.duration = Histogram(
            "vmcp_embedding_request_duration_seconds",
            "Time from sending a request to the embedding service to its answer (or failure).",
            buckets=_BUCKETS,
            registry=registry,
        )
        self.fallbacks = Counter(
            "vmcp_optimizer_keyword_fallbacks",
            "find_tool answers ranked by keywords alone because the embedding service failed.",
            registry=registry,
        )

    def observe(self, outcome: str, seconds: float) -> None:
        self.requests.labels(outcome).inc()
        self.duration.observe(seconds)


class SemanticSearch:
    """Tools near a query by meaning, or None when the embedding service fails (see the module docstring)."""

    def __init__(self, registry: CollectorRegistry, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.metrics = EmbeddingMetrics(registry)
        self.clock = clock
        self._identity: tuple[str, str, str | None] | None = None
        self._vectors: dict[str, Vector] = {}
        self._lock = asyncio.Lock()
        self._warned_at: float | None = None
        self._http: httpx2.AsyncClient | None = None
        """Made at the first semantic search, kept for the process's life (see ``embedding_client``)."""

    async def nearest(
        self,
        config: OptimizerConfig,
        tools: Sequence[Tool],
        allowed: Callable[[Tool], bool],
        description: str,
        limit: int,
    ) -> list[Tool] | None:
        """At most ``limit`` of ``tools`` (the merged catalogue) that ``allowed`` accepts, nearest to
        ``description`` within the config's distance threshold; None without a service or when it fails."""
        endpoint = EmbeddingEndpoint.from_config(config)
        if endpoint is None:
            return None
        if self._http is None:
            self._http = embedding_client()
        session = embedding_session(endpoint, self._http, self.metrics.observe)
        try:
            vectors = await self._catalogue(session, tools)
            texts = ((tool, tool_text(tool)) for tool in tools if allowed(tool))
            candidates = [(tool, vectors[text]) for tool, text in texts if text in vectors]
            if not candidates:
                return []  # nothing to compare the query with: it need not be embedded
            (query,) = await session.embed([description])
        except EmbeddingError as exc:
            self._fell_back(endpoint, exc)
            return None
        return nearest(unit(query), candidates, threshold=config.distance_threshold, limit=limit)

    async def _catalogue(self, session: EmbeddingSession, tools: Sequence[Tool]) -> dict[str, Vector]:
        """The unit vectors of ``tools`` by text, embedding those not known yet (one caller at a time)."""
        try:
            async with asyncio.timeout_at(session.deadline):
                await self._lock.acquire()
        except TimeoutError:
            raise EmbeddingError("no answer in time (another find_tool is embedding the tools)") from None
        try:
            if session.endpoint.identity != self._identity:
                self._identity, self._vectors = session.endpoint.identity, {}
            texts = {tool_text(tool) for tool in tools}
            missing = sorted(texts - self._vectors.keys())
            if missing:
                embedded = await session.embed(missing)
                self._vectors = {t: v for t, v in self._vectors.items() if t in texts}
                self._vectors.update(zip(missing, map(unit, embedded), strict=True))
            return self._vectors
        finally:
            self._lock.release()

    def _fell_back(self, endpoint: EmbeddingEndpoint, error: EmbeddingError) -> None:
        self.metrics.fallbacks.inc()
        now = self.clock()
        if self._warned_at is not None and now - self._warned_at < WARN_INTERVAL:
            return
        self._warned_at = now
        log.warning(
            "embedding service failed; find_tool answers from keywords alone",
            embedding_service=endpoint.url,
            provider=endpoint.provider,
            error=str(error),
            next_warning_after_seconds=WARN_INTERVAL,
        )
