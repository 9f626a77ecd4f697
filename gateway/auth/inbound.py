"""Inbound OAuth 2.1 resource-server middleware for the proxy and the gateway.

``OIDCMiddleware(app, config.oidc, resource_url=...)`` wraps the MCP routes; its answers (RFC 9728
metadata, what passes unauthenticated, 401 / 403 / 503) are the table of docs/auth.md. On success it
removes every ``Authorization`` header (the inbound token never reaches a backend) and records in
``scope["state"]``: ``mcp_auth_claims`` (the verified claims), ``mcp_auth_identity`` (the audit's caller,
``sub`` / ``client_id``) and ``mcp_auth_token`` (:class:`ValidatedToken`, the subject of an RFC 8693
exchange; never forward ``.raw``). The validator owns an HTTP client: call :meth:`OIDCMiddleware.aclose`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Protocol
from urllib.parse import urlsplit

import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth_config import OIDCConfig

from .metrics import INBOUND_DECISIONS
from .tokens import (
    AuthUnavailableError,
    InsufficientScopeError,
    InvalidTokenError,
    TokenValidator,
    ValidatedToken,
)

__all__ = [
    "CLAIMS_STATE_KEY",
    "IDENTITY_STATE_KEY",
    "METADATA_PATH",
    "PUBLIC_PATHS",
    "TOKEN_STATE_KEY",
    "BearerValidator",
    "OIDCMiddleware",
    "TokenValidator",
    "ValidatedToken",
    "protected_resource_metadata",
]

log = structlog.get_logger("gateway.auth.inbound")

METADATA_PATH = "/.well-known/oauth-protected-resource"
PUBLIC_PATHS: frozenset[str] = frozenset({"/health", "/healthz", "/readyz", "/metrics"})
CLAIMS_STATE_KEY = "mcp_auth_claims"
IDENTITY_STATE_KEY = "mcp_auth_identity"
TOKEN_STATE_KEY = "mcp_auth_token"


class BearerValidator(Protocol):
    """What checks a bearer token: :class:`TokenValidator` (an OIDC issuer's JWTs), or the embedded
    authorization server's (:class:`gateway.authserver.resource.IssuedTokenValidator`)."""

    async def validate(self, token: str) -> ValidatedToken: ...

    async def aclose(self) -> None: ...


def protected_resource_metadata(config: OIDCConfig, resource_url: str) -> dict[str, Any]:
    """The RFC 9728 document for this resource."""
    document: dict[str, Any] = {
        "resource": resource_url,
        "authorization_servers": [config.issuer],
        "bearer_methods_supported": ["header"],
    }
    if config.required_scopes:
        document["scopes_supported"] = list(config.required_scopes)
    return document


def _quote(value: str) -> str:
    """An RFC 7230 quoted-string body: drop characters that could break the header."""
    return "".join(ch for ch in value if ch.isprintable() and ch not in '"\\')


class OIDCMiddleware:
    """ASGI middleware: RFC 9728 metadata + bearer JWT validation + Authorization stripping."""

    def __init__(
        self,
        app: ASGIApp,
        config: OIDCConfig,
        resource_url: str,
        *,
        validator: BearerValidator | None = None,
        public_paths: Iterable[str] = PUBLIC_PATHS,
    ) -> None:
        self.app = app
        self.config = config
        self.resource_url = config.resource_url or resource_url
        self.validator: BearerValidator = validator if validator is not None else TokenValidator(config)
        self.public_paths = frozenset(public_paths)
        parts = urlsplit(self.resource_url)
        suffix = parts.path.rstrip("/")
        self.metadata_paths = frozenset({METADATA_PATH, METADATA_PATH + suffix})
        self.metadata_url = f"{parts.scheme}://{parts.netloc}{METADATA_PATH}{suffix}"
        self._metadata_body = json.dumps(protected_resource_metadata(config, self.resource_url)).encode()

    async def aclose(self) -> None:
        await self.validator.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        if path in self.metadata_paths and scope["type"] == "http":
            await self._metadata(scope, send)
            return
        headers: list[tuple[bytes, bytes]] = list(scope.get("headers", []))
        stripped = [(k, v) for k, v in headers if k.lower() != b"authorization"]
        if path in self.public_paths or self._is_preflight(scope, headers):
            await self.app({**scope, "headers": stripped}, receive, send)
            return
        credentials = [v for k, v in headers if k.lower() == b"authorization"]
        token = self._bearer(credentials)
        if token is None:
            INBOUND_DECISIONS.labels(outcome="missing_token").inc()
            await self._challenge(scope, send, 401, None, None)
            return
        try:
            validated = await self.validator.validate(token)
        except InvalidTokenError as err:
            INBOUND_DECISIONS.labels(outcome="invalid_token").inc()
            # debug, not info: a client retrying an expired token would write one line per request
            # (mcp_auth_inbound_decisions_total counts them; the 401 tells the client why)
            log.debug("inbound token refused", path=path, reason=str(err))
            await self._challenge(scope, send, 401, "invalid_token", str(err))
            return
        except InsufficientScopeError as err:
            INBOUND_DECISIONS.labels(outcome="insufficient_scope").inc()
            log.debug("inbound token lacks scope", path=path, missing=list(err.missing))
            await self._challenge(scope, send, 403, "insufficient_scope", str(err))
            return
        except AuthUnavailableError as err:
            INBOUND_DECISIONS.labels(outcome="unavailable").inc()
            log.warning("inbound token cannot be validated", path=path, reason=str(err))
            await self._unavailable(scope, send, str(err))
            return
        INBOUND_DECISIONS.labels(outcome="allowed").inc()
        state = dict(scope.get("state") or {})
        state[CLAIMS_STATE_KEY] = validated.claims
        state[IDENTITY_STATE_KEY] = validated.identity
        state[TOKEN_STATE_KEY] = validated
        await self.app({**scope, "headers": stripped, "state": state}, receive, send)

    @staticmethod
    def _is_preflight(scope: Scope, headers: list[tuple[bytes, bytes]]) -> bool:
        """A CORS preflight: browsers send it without credentials, so it cannot be authenticated."""
        names = {k.lower() for k, _ in headers}
        return scope.get("method") == "OPTIONS" and {b"origin", b"access-control-request-method"} <= names

    @staticmethod
    def _bearer(credentials: list[bytes]) -> str | None:
        """The bearer token, or None when absent; several Authorization headers count as absent."""
        if len(credentials) != 1:
            return None
        scheme, _, token = credentials[0].decode("latin-1").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        return token

    def _challenge_header(self, error: str | None, description: str | None) -> str:
        parts = [f'resource_metadata="{self.metadata_url}"']
        if self.config.required_scopes:
            parts.append(f'scope="{_quote(" ".join(self.config.required_scopes))}"')
        if error is not None:
            parts.append(f'error="{error}"')
        if description is not None:
            parts.append(f'error_description="{_quote(description)}"')
        return "Bearer " + ", ".join(parts)

    async def _challenge(
        self, scope: Scope, send: Send, status: int, error: str | None, description: str | None
    ) -> None:
        body = {
            "error": error or "unauthorized",
            "error_description": description or "a bearer token is required",
        }
        challenge = (b"www-authenticate", self._challenge_header(error, description).encode())
        await self._respond(scope, send, status, json.dumps(body).encode(), [challenge])

    async def _unavailable(self, scope: Scope, send: Send, description: str) -> None:
        body = json.dumps({"error": "temporarily_unavailable", "error_description": description}).encode()
        await self._respond(scope, send, 503, body, [(b"retry-after", b"5")])

    async def _metadata(self, scope: Scope, send: Send) -> None:
        if scope.get("method") not in ("GET", "HEAD"):
            await self._respond(scope, send, 405, b"", [(b"allow", b"GET, HEAD")])
            return
        cacheable = [(b"access-control-allow-origin", b"*"), (b"cache-control", b"max-age=3600")]
        head = scope.get("method") == "HEAD"
        await self._respond(scope, send, 200, self._metadata_body, cacheable, head=head)

    @staticmethod
    async def _respond(
        scope: Scope,
        send: Send,
        status: int,
        body: bytes,
        extra: list[tuple[bytes, bytes]],
        *,
        head: bool = False,
    ) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *extra,
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if head else body})
