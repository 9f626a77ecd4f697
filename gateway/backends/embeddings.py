"""The client of the optimizer's embedding service: texts in, one vector per text out.

Two wire protocols, as ToolHive's optimizer speaks them (``embeddingProvider``):

- ``tei`` (Hugging Face Text Embeddings Inference): ``POST {url}/embed`` with ``{"inputs": [...],
  "truncate": true}`` (an over-long tool description is cut by the server, not refused), answered by one
  array of numbers per input; at most :data:`TEI_BATCH` inputs a request (TEI's default
  ``max_client_batch_size``).
- ``openai`` (OpenAI, Azure OpenAI and compatible gateways): ``POST {url}/embeddings`` with ``{"model",
  "input": [...], "encoding_format": "float"}``, answered by ``{"data": [{"index", "embedding"}]}`` (in any
  order); ``Authorization: Bearer`` from the gateway's ``OPENAI_API_KEY`` when it is set, plus the
  configured extra headers (they can override neither).

Every request goes out on one kept client (:func:`embedding_client`) under the backends' HTTP policy
(:func:`gateway.backends.http.policy_client`: redirects never followed) after the SSRF guard
(:func:`gateway.backends.ssrf.check_endpoint`; private addresses allowed, link-local and metadata never),
and must be answered before the session's deadline: one deadline for the whole of one ``find_tool``'s
embedding, so a slow service never holds it longer than ``embeddingServiceTimeout``. Failures raise
:class:`EmbeddingError` with the outcome counted by the caller's ``observe`` (``ok``, ``error``,
``timeout``).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx2

from api.optimizer_rules import API_KEY_ENV, DEFAULT_TIMEOUT_SECONDS
from api.vmcp_config import OptimizerConfig
from gateway.backends.http import policy_client
from gateway.backends.ssrf import EndpointRefusedError, check_endpoint

__all__ = [
    "OPENAI_BATCH",
    "TEI_BATCH",
    "EmbeddingEndpoint",
    "EmbeddingError",
    "EmbeddingSession",
    "Observe",
    "decode_answer",
    "embedding_client",
    "embedding_session",
]

TEI_BATCH = 32
"""Inputs per TEI request (TEI's default ``max_client_batch_size``)."""
OPENAI_BATCH = 2048
"""Inputs per OpenAI request (the API's limit)."""
_MAX_ERROR_TEXT = 200

Outcome = Literal["ok", "error", "timeout"]
Observe = Callable[[Outcome, float], None]
"""Told the outcome and duration (seconds) of every request."""
Vector = tuple[float, ...]


class EmbeddingError(Exception):
    """The embedding service did not answer usable vectors (the message says why)."""


@dataclass(frozen=True)
class EmbeddingEndpoint:
    """Where and how to ask for embeddings (from the optimizer's config and the environment)."""

    provider: Literal["tei", "openai"]
    url: str
    model: str | None
    headers: Mapping[str, str]
    timeout: float
    api_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_config(
        cls, config: OptimizerConfig, environ: Mapping[str, str] = os.environ
    ) -> EmbeddingEndpoint | None:
        """The endpoint of ``config``; None without an ``embeddingService`` (keyword search only)."""
        if config.embedding_service is None:
            return None
        openai = config.provider == "openai"
        return cls(
            provider=config.provider,
            url=config.embedding_service.rstrip("/"),
            model=config.embedding_model,
            headers=dict(config.embedding_headers or {}) if openai else {},
            timeout=config.timeout,
            api_key=(environ.get(API_KEY_ENV) or None) if openai else None,
        )

    @property
    def identity(self) -> tuple[str, str, str | None]:
        """What the vectors depend on: vectors of two identities are not comparable."""
        return self.provider, self.url, self.model if self.provider == "openai" else None


@dataclass
class EmbeddingSession:
    """Requests to one endpoint on one HTTP client, all before one deadline (``asyncio`` loop time)."""

    endpoint: EmbeddingEndpoint
    http: httpx2.AsyncClient
    deadline: float
    observe: Observe | None = None

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        """One vector per text, in order (batched as the provider allows)."""
        batch = TEI_BATCH if self.endpoint.provider == "tei" else OPENAI_BATCH
        vectors: list[Vector] = []
        for start in range(0, len(texts), batch):
            vectors += await self._request(texts[start : start + batch])
        return vectors

    async def _request(self, texts: Sequence[str]) -> list[Vector]:
        started = time.monotonic()
        outcome: Outcome = "error"
        try:
            async with asyncio.timeout_at(self.deadline):
                await check_endpoint(self.endpoint.url, allow_private=True)
                response = await self.http.post(
                    self._path(),
                    json=self._body(texts),
                    headers=self._headers(),
                    timeout=self.endpoint.timeout,
                )
                vectors = decode_answer(self.endpoint.provider, response, len(texts))
            outcome = "ok"
            return vectors
        except TimeoutError:
            outcome = "timeout"
            raise EmbeddingError(f"no answer within {self.endpoint.timeout:g}s") from None
        except (httpx2.HTTPError, EndpointRefusedError) as exc:
            raise EmbeddingError(f"{type(exc).__name__}: {exc}") from exc
        finally:
            if self.observe is not None:
                self.observe(outcome, time.monotonic() - started)

    def _path(self) -> str:
        return self.endpoint.url + ("/embed" if self.endpoint.provider == "tei" else "/embeddings")

    def _body(self, texts: Sequence[str]) -> dict[str, Any]:
        if self.endpoint.provider == "tei":
            return {"inputs": list(texts), "truncate": True}
        return {"model": self.endpoint.model, "input": list(texts), "encoding_format": "float"}

    def _headers(self) -> dict[str, str]:
        headers = dict(self.endpoint.headers)
        headers["content-type"] = "application/json"
        if self.endpoint.api_key:
            headers["authorization"] = f"Bearer {self.endpoint.api_key}"
        return headers


def embedding_session(
    endpoint: EmbeddingEndpoint, http: httpx2.AsyncClient, observe: Observe | None = None
) -> EmbeddingSession:
    """A session on ``http`` (an :func:`embedding_client`) whose requests all end within
    ``endpoint.timeout`` from now."""
    deadline = asyncio.get_running_loop().time() + endpoint.timeout
    return EmbeddingSession(endpoint, http, deadline, observe)


def embedding_client() -> httpx2.AsyncClient:
    """The HTTP client of embedding requests, under the policy: one per gateway, kept (building one
    costs tens of milliseconds of TLS set-up, and its pool keeps the service's connection open)."""
    return policy_client(timeout=DEFAULT_TIMEOUT_SECONDS)


def decode_answer(provider: str, response: httpx2.Response, count: int) -> list[Vector]:
    """The vectors of one answer, in input order; EmbeddingError when it is not what was asked."""
    if response.status_code != 200:
        text = response.text[:_MAX_ERROR_TEXT]
        raise EmbeddingError(f"{response.request.url} answered HTTP {response.status_code}: {text}")
    try:
        body = response.json()
        if provider == "tei":
            vectors = [_vector(v) for v in body]
        else:
            vectors = [()] * count
            for item in body["data"]:
                index = item["index"]
                if not isinstance(index, int) or not 0 <= index < count:
                    raise ValueError(f"index {index!r} out of range")
                vectors[index] = _vector(item["embedding"])
    except (ValueError, TypeError, KeyError) as exc:
        raise EmbeddingError(f"{response.request.url} answered no embeddings ({exc})") from exc
    filled = sum(1 for v in vectors if v)
    if len(vectors) != count or filled != count:
        raise EmbeddingError(f"{response.request.url} answered {filled} embeddings for {count} texts")
    return vectors


def _vector(value: Any) -> Vector:
    if not isinstance(value, list) or not all(isinstance(x, int | float) for x in value):
        raise ValueError("an embedding is not an array of numbers")
    return tuple(float(x) for x in value)
