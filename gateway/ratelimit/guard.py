"""Rate limits on ``tools/call`` at the front door (ToolHive's ``rateLimiting``).

:class:`RateLimitGuard` wraps the MCP routes inside inbound authentication (it keys per-user buckets
by the authenticated identity, else the client address). It reads a POST's body once, and for a
``tools/call`` takes a token from each bucket that applies (:mod:`gateway.ratelimit.buckets`); over
the limit the request is answered here as ToolHive answers it: HTTP 429, ``Retry-After``, and the
JSON-RPC error ``{"code": 429, "message": "Rate limit exceeded", "data": {"retryAfterSeconds": N}}``,
counted in ``mcp_proxy_requests_total{outcome="rate_limited"}`` and written to the audit log. Anything
else (other methods, unparsable bodies) goes on untouched with the body replayed. While the bucket store
does not answer, ``failureMode`` decides (docs/scaling.md).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.scaling_config import RateLimitConfig
from gateway.fastpath_reply import replay
from gateway.observability import Auditor, RequestMetrics
from gateway.request_policy import caller_of
from gateway.sessions_store.link import RETRY_SECONDS, StoreUnavailableError

from .buckets import BucketStore, Claim, retry_after_seconds

__all__ = ["MESSAGE", "RATE_LIMITED_CODE", "RateLimitGuard", "RateLimiter", "rate_limited_body"]

logger = logging.getLogger("mcp_operator.ratelimit")

RATE_LIMITED_CODE = 429
"""ToolHive's JSON-RPC code for a rate-limited call (outside the reserved range on every revision)."""
MESSAGE = "Rate limit exceeded"


def rate_limited_body(request_id: Any, retry_after: int) -> bytes:
    """ToolHive's error body; ``id`` only when the request had a usable one."""
    body: dict[str, Any] = {
        "jsonrpc": "2.0",
        "error": {"code": RATE_LIMITED_CODE, "message": MESSAGE, "data": {"retryAfterSeconds": retry_after}},
    }
    if isinstance(request_id, str | int) and not isinstance(request_id, bool):
        body["id"] = request_id
    return json.dumps(body, separators=(",", ":")).encode()


class RateLimiter:
    """The buckets of ``rateLimiting`` and how a refusal is counted: what a ``tools/call`` takes a token
    from, at the front door (:class:`RateLimitGuard`) and for each tool call a code-mode script makes."""

    def __init__(
        self,
        config: RateLimitConfig,
        buckets: BucketStore,
        *,
        key_prefix: str,
        metrics: RequestMetrics,
        auditor: Auditor,
    ) -> None:
        self.config = config
        self.buckets = buckets
        self.prefix = key_prefix
        self.metrics = metrics
        self.auditor = auditor
        self.tools = {tool.name: tool for tool in config.tools}

    def claims(self, tool: str, caller: str) -> list[Claim]:
        """The buckets a call of ``tool`` by ``caller`` takes a token from."""
        config, key = self.config, self.prefix
        claims = []
        if config.shared is not None:
            claims.append(Claim(f"{key}shared", config.shared))
        if config.per_user is not None:
            claims.append(Claim(f"{key}user:{caller}", config.per_user))
        limits = self.tools.get(tool)
        if limits is not None and limits.shared is not None:
            claims.append(Claim(f"{key}tool:{tool}", limits.shared))
        if limits is not None and limits.per_user is not None:
            claims.append(Claim(f"{key}user-tool:{tool}:{caller}", limits.per_user))
        return claims

    async def admit(self, tool: str, caller: str) -> int | None:
        """None to admit the call, else its ``Retry-After`` seconds (the refusal counted and audited)."""
        retry_after = await self._check(tool, caller)
        if retry_after is not None:
            self.metrics.observe("tools/call", tool, "rate_limited", 0.0)
            self.auditor.tool_call(caller, tool, None, "rate_limited", 0.0, arguments=None, error=MESSAGE)
        return retry_after

    async def _check(self, tool: str, caller: str) -> int | None:
        claims = self.claims(tool, caller)
        if not claims:
            return None
        try:
            wait = await self.buckets.take(claims)
        except StoreUnavailableError as exc:
            if self.config.fails_open:
                logger.warning("rate limit not checked (failureMode open): %s", exc)
                return None
            logger.warning("rate limit store unreachable, call refused (failureMode closed): %s", exc)
            return retry_after_seconds(RETRY_SECONDS)
        return retry_after_seconds(wait) if wait > 0 else None


class RateLimitGuard:
    """ASGI middleware (see the module docstring)."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter, *, max_body_bytes: int) -> None:
        self.app = app
        self.limiter = limiter
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        messages, body = await self._read(receive)
        call = _tool_call(body) if body is not None else None
        if call is not None:
            request_id, tool = call
            retry_after = await self.limiter.admit(tool, caller_of(scope))
            if retry_after is not None:
                await _send_429(send, request_id, retry_after)
                return
        await self.app(scope, replay(messages, receive), send)

    async def _read(self, receive: Receive) -> tuple[list[Message], bytes | None]:
        """The body's messages and the body (None past the size limit: the inner app answers 413)."""
        messages: list[Message] = []
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return messages, None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return messages, None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return messages, b"".join(chunks)


def _tool_call(body: bytes) -> tuple[Any, str] | None:
    """``(id, tool name)`` of a JSON-RPC ``tools/call`` request body, else None."""
    if b"tools/call" not in body:
        return None  # cheap: most requests are not calls
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(decoded, dict) or decoded.get("method") != "tools/call":
        return None
    params = decoded.get("params")
    name = params.get("name") if isinstance(params, dict) else None
    return (decoded.get("id"), name) if isinstance(name, str) else None


async def _send_429(send: Send, request_id: Any, retry_after: int) -> None:
    body = rate_limited_body(request_id, retry_after)
    headers = [
        (b"content-type", b"application/json"),
        (b"retry-after", str(retry_after).encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": 429, "headers": headers})
    await send({"type": "http.response.body", "body": body})
