"""The authorization server's HTTP endpoints, served by the proxy's front next to ``/mcp``.

| Path | What |
|---|---|
| ``/.well-known/oauth-authorization-server`` (and ``/<path>``) | RFC 8414 metadata |
| ``/.well-known/openid-configuration`` (and ``/<path>``) | the same document, for OIDC clients |
| ``/.well-known/jwks.json`` | the public signing keys |
| ``/oauth/register`` | RFC 7591 registration: public clients (confidential if allowed); rate limited |
| ``/oauth/authorize`` | code + PKCE; the browser continues at the upstream identity provider |
| ``/oauth/callback`` | the upstream's redirect back; the browser continues at the client with a code |
| ``/oauth/token`` | ``authorization_code`` (PKCE S256) and ``refresh_token`` (rotated) |

The SDK's handlers serve register, authorize and token (:mod:`gateway.authserver.provider`). While the
store does not answer, every endpoint that needs it answers 503 ``temporarily_unavailable``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from mcp.server.auth.handlers.authorize import AuthorizationHandler
from mcp.server.auth.handlers.register import RegistrationHandler
from mcp.server.auth.handlers.token import TokenHandler
from mcp.server.auth.middleware.client_auth import ClientAuthenticator
from mcp.server.auth.settings import ClientRegistrationOptions
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from api.scaling_config import RateLimitBucket
from gateway.authserver.provider import AuthServerProvider, SignInError
from gateway.authserver.store import StoreUnavailableError
from gateway.ratelimit.buckets import Claim, MemoryBuckets, retry_after_seconds

__all__ = ["JWKS_PATH", "authorization_server_metadata", "authserver_routes"]

log = structlog.get_logger("gateway.authserver.routes")

JWKS_PATH = "/.well-known/jwks.json"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_PUBLIC = {"Access-Control-Allow-Origin": "*", "Cache-Control": "max-age=300"}

Endpoint = Callable[[Request], Awaitable[Response]]


def authorization_server_metadata(provider: AuthServerProvider) -> dict[str, Any]:
    """RFC 8414 / OIDC discovery document of the server."""
    config = provider.config
    issuer = config.issuer
    methods = ["none"]
    if config.allow_confidential_client_registration:
        methods += ["client_secret_basic", "client_secret_post"]
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{config.authorization_endpoint_base_url or issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "registration_endpoint": f"{issuer}/oauth/register",
        "jwks_uri": f"{issuer}{JWKS_PATH}",
        "scopes_supported": provider.scopes,
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": methods,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": list(provider.keys.algorithms),
    }


def _store_guarded(endpoint: Endpoint) -> Endpoint:
    async def guarded(request: Request) -> Response:
        try:
            return await endpoint(request)
        except StoreUnavailableError as err:
            log.warning("authorization server store unavailable", path=request.url.path, reason=str(err))
            body = {
                "error": "temporarily_unavailable",
                "error_description": "the server's store is unavailable",
            }
            return JSONResponse(body, status_code=503, headers={"Retry-After": "5", **_NO_STORE})

    return guarded


def _public_by_default(handler: Endpoint) -> Endpoint:
    """RFC 7591 registration where an omitted ``token_endpoint_auth_method`` means ``none`` (a public
    client, as MCP clients are); the SDK's handler would default to ``client_secret_post``."""

    async def register(request: Request) -> Response:
        body = await request.body()
        try:
            metadata = json.loads(body)
        except ValueError:
            metadata = None
        if isinstance(metadata, dict) and "token_endpoint_auth_method" not in metadata:
            body = json.dumps({**metadata, "token_endpoint_auth_method": "none"}).encode()

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        return await handler(Request(request.scope, receive))

    return register


REGISTRATION_LIMIT = RateLimitBucket(max_tokens=5, refill_period=5.0)
"""Registrations per process: a burst of 5, one a second sustained (ToolHive's limit): registration is
unauthenticated, and each one is stored."""


def _rate_limited(endpoint: Endpoint, buckets: MemoryBuckets) -> Endpoint:
    claim = Claim("register", REGISTRATION_LIMIT)

    async def limited(request: Request) -> Response:
        wait = await buckets.take([claim])
        if wait > 0:
            headers = {"Retry-After": str(retry_after_seconds(wait))}
            return PlainTextResponse("rate limit exceeded, retry later", status_code=429, headers=headers)
        return await endpoint(request)

    return limited


def authserver_routes(provider: AuthServerProvider, *, buckets: MemoryBuckets | None = None) -> list[Route]:
    """Every endpoint of the table above (``buckets``: the registration limit's, for tests' clocks)."""
    metadata = authorization_server_metadata(provider)
    options = ClientRegistrationOptions(
        enabled=True, valid_scopes=provider.scopes, default_scopes=provider.scopes
    )
    authenticator = ClientAuthenticator(provider)  # type: ignore[arg-type]
    authorize = AuthorizationHandler(provider).handle  # type: ignore[arg-type]
    token = TokenHandler(provider, authenticator).handle  # type: ignore[arg-type]
    register = _public_by_default(RegistrationHandler(provider, options).handle)  # type: ignore[arg-type]

    async def discovery(_: Request) -> Response:
        return JSONResponse(metadata, headers=_PUBLIC)

    async def jwks(_: Request) -> Response:
        return JSONResponse(provider.keys.jwks(), headers=_PUBLIC)

    async def callback(request: Request) -> Response:
        try:
            location = await provider.callback(dict(request.query_params))
        except SignInError as err:
            if err.redirect is not None:
                return RedirectResponse(err.redirect, status_code=302, headers=_NO_STORE)
            return PlainTextResponse(err.message, status_code=err.status, headers=_NO_STORE)
        return RedirectResponse(location, status_code=302, headers=_NO_STORE)

    routes = [
        Route(JWKS_PATH, jwks, methods=["GET"]),
        Route("/oauth/authorize", _store_guarded(authorize), methods=["GET", "POST"]),
        Route("/oauth/callback", _store_guarded(callback), methods=["GET"]),
        Route("/oauth/token", _store_guarded(token), methods=["POST"]),
        Route(
            "/oauth/register",
            _rate_limited(_store_guarded(register), buckets or MemoryBuckets()),
            methods=["POST"],
        ),
    ]
    for document in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
        routes += [Route(document, discovery, methods=["GET"]), Route(document + "/{path:path}", discovery)]
    return routes
