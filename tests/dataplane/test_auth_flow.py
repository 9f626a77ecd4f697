"""Inbound OIDC and outbound credentials over real HTTP on 127.0.0.1.

Three small servers run in the test's event loop under uvicorn: an issuer (OIDC discovery, JWKS and a
token endpoint for client credentials and RFC 8693 exchange), a backend that echoes the headers it got,
and a "proxy": :class:`OIDCMiddleware` in front of an app that calls the backend with the headers of an
outbound credential provider, as the remote proxy does.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from api.auth_config import HeaderForwardConfig, OIDCConfig, parse_outbound_auth
from gateway.auth.inbound import OIDCMiddleware, TokenValidator, ValidatedToken
from gateway.auth.outbound import Backoff, CredentialProvider, OutboundAuthError, build_outbound_provider
from tests.support.auth import (
    AUDIENCE,
    TLS_CONTEXT,
    Issuer,
    bind,
    challenge,
    ec_key,
    hs256_with_public_key,
    public_jwk,
    rsa_key,
    serve,
    unsigned_token,
)


@dataclass
class Stack:
    issuer: Issuer
    proxy_url: str
    backend_seen: list[dict[str, str]]
    inner_seen: list[dict[str, Any]]
    middleware: OIDCMiddleware
    client: httpx2.AsyncClient
    """One client for the whole test: creating an httpx2 client costs ~0.3 s (its TLS context)."""

    async def get(self, path: str, token: str | None = None) -> httpx2.Response:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        url = path if path.startswith("http") else f"{self.proxy_url}{path}"
        return await self.client.get(url, headers=headers)

    async def post_mcp(self, token: str) -> httpx2.Response:
        headers = {"Authorization": f"Bearer {token}"}
        return await self.client.post(f"{self.proxy_url}/mcp", headers=headers, content=b"{}")


def inner_app(
    backend_url: str,
    provider: CredentialProvider | None,
    seen: list[dict[str, Any]],
    client: httpx2.AsyncClient,
) -> Starlette:
    """The app behind the middleware: reports what it sees, calls the backend as the remote proxy does."""

    async def whoami(request: Request) -> Response:
        seen.append({"headers": dict(request.headers), "state": dict(request.state._state)})
        return JSONResponse(
            {"identity": request.state.mcp_auth_identity, "claims": request.state.mcp_auth_claims}
        )

    async def mcp(request: Request) -> Response:
        validated: ValidatedToken = request.state.mcp_auth_token
        headers = await provider.headers(validated.raw) if provider is not None else {}
        upstream = await client.post(f"{backend_url}/mcp", headers=headers, content=await request.body())
        return Response(upstream.content, status_code=upstream.status_code, media_type="application/json")

    async def health(request: Request) -> Response:
        seen.append({"headers": dict(request.headers)})
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route("/whoami", whoami),
            Route("/mcp", mcp, methods=["POST"]),
            Route("/health", health),
            Route("/readyz", health),
        ]
    )


def backend_app(seen: list[dict[str, str]]) -> Starlette:
    async def mcp(request: Request) -> Response:
        seen.append(dict(request.headers))
        return JSONResponse({"headers": dict(request.headers)})

    return Starlette(routes=[Route("/mcp", mcp, methods=["POST"])])


@contextlib.asynccontextmanager
async def stack(
    outbound: dict[str, Any] | None = None,
    *,
    environ: dict[str, str] | None = None,
    header_forward: dict[str, Any] | None = None,
    **oidc: Any,
) -> AsyncIterator[Stack]:
    issuer = Issuer()
    backend_seen: list[dict[str, str]] = []
    inner_seen: list[dict[str, Any]] = []
    (issuer_sock, issuer.url), (backend_sock, backend_url), (proxy_sock, proxy_url) = bind(), bind(), bind()
    config = OIDCConfig.model_validate({"issuer": issuer.url, "audience": AUDIENCE, **oidc})
    client = httpx2.AsyncClient(verify=TLS_CONTEXT, timeout=30.0)  # generous: CI machines are busy
    provider = None
    if outbound is not None:
        provider = build_outbound_provider(
            parse_outbound_auth({**outbound, "tokenUrl": f"{issuer.url}/token"}),
            header_forward=HeaderForwardConfig.model_validate(header_forward) if header_forward else None,
            http=client,
            environ=environ,
            retry_backoff=Backoff(base=0.01, cap=0.02),
        )
    app = inner_app(backend_url, provider, inner_seen, client)
    middleware = OIDCMiddleware(
        app, config, f"{proxy_url}/mcp", validator=TokenValidator(config, http=client)
    )
    async with (
        client,
        serve(
            (issuer_sock, issuer.app()), (backend_sock, backend_app(backend_seen)), (proxy_sock, middleware)
        ),
    ):
        try:
            yield Stack(issuer, proxy_url, backend_seen, inner_seen, middleware, client)
        finally:
            await middleware.aclose()
            if provider is not None:
                await provider.aclose()


async def test_valid_token_reaches_the_app_without_authorization() -> None:
    async with stack() as s:
        response = await s.get("/whoami", s.issuer.mint())
        assert response.status_code == 200
        assert response.json()["identity"] == "alice"
        assert response.json()["claims"]["aud"] == AUDIENCE
        assert "authorization" not in s.inner_seen[-1]["headers"]
        es = await s.get("/whoami", s.issuer.mint(key=ec_key("issuer"), alg="ES256", kid="ec-1"))
        assert es.status_code == 200


async def test_missing_token_gets_a_bare_challenge_pointing_at_the_metadata() -> None:
    async with stack() as s:
        response = await s.get("/mcp")
        assert response.status_code == 401
        params = challenge(response)
        assert "error" not in params
        assert params["resource_metadata"] == f"{s.proxy_url}/.well-known/oauth-protected-resource/mcp"
        metadata = await s.get(params["resource_metadata"])
        assert metadata.status_code == 200
        assert metadata.json() == {
            "resource": f"{s.proxy_url}/mcp",
            "authorization_servers": [s.issuer.url],
            "bearer_methods_supported": ["header"],
        }
        root = await s.get("/.well-known/oauth-protected-resource")
        assert root.json() == metadata.json()


@pytest.mark.parametrize(
    ("make_token", "reason"),
    [
        (lambda i: i.mint(exp=int(time.time()) - 600), "expired"),
        (lambda i: i.mint(nbf=int(time.time()) + 600), "not valid yet"),
        (lambda i: i.mint(aud="someone-else"), "audience"),
        (lambda i: i.mint(iss="https://evil.example.com"), "issuer"),
        (lambda i: i.mint(key=rsa_key("forger")), "signature"),
        (unsigned_token, "algorithm none is not allowed"),
        (hs256_with_public_key, "algorithm HS256 is not allowed"),
        (lambda i: "garbage", "well-formed"),
    ],
    ids=[
        "expired",
        "not-yet-valid",
        "audience",
        "issuer",
        "signature",
        "alg-none",
        "hs256-confusion",
        "garbage",
    ],
)
async def test_bad_tokens_are_refused_with_invalid_token(make_token: Any, reason: str) -> None:
    async with stack() as s:
        response = await s.get("/whoami", make_token(s.issuer))
        assert response.status_code == 401
        params = challenge(response)
        assert params["error"] == "invalid_token"
        assert reason in params["error_description"]
        assert params["resource_metadata"].endswith("/.well-known/oauth-protected-resource/mcp")
        assert s.inner_seen == []


async def test_insufficient_scope_is_403_with_the_required_scopes() -> None:
    async with stack(requiredScopes=["mcp:tools", "mcp:admin"]) as s:
        response = await s.get("/whoami", s.issuer.mint())
        assert response.status_code == 403
        params = challenge(response)
        assert params["error"] == "insufficient_scope"
        assert params["scope"] == "mcp:tools mcp:admin"
        assert (await s.get("/whoami", s.issuer.mint(scope="mcp:tools mcp:admin"))).status_code == 200
        metadata = await s.get("/.well-known/oauth-protected-resource/mcp")
        assert metadata.json()["scopes_supported"] == ["mcp:tools", "mcp:admin"]


async def test_probes_are_public_and_never_see_a_token() -> None:
    async with stack() as s:
        for path in ("/health", "/readyz"):
            response = await s.get(path, "whatever-token")
            assert response.status_code == 200
            assert "authorization" not in s.inner_seen[-1]["headers"]


async def test_only_real_cors_preflights_skip_authentication() -> None:
    async with stack() as s:
        preflight = {"Origin": "http://localhost:6274", "Access-Control-Request-Method": "POST"}
        passed = await s.client.options(f"{s.proxy_url}/whoami", headers=preflight)
        assert passed.status_code == 405  # reached the app (which has no OPTIONS handler)
        refused = await s.client.options(f"{s.proxy_url}/whoami")
        assert refused.status_code == 401


async def test_key_rotation_and_unknown_kid_flood() -> None:
    async with stack(jwksMinRefreshSeconds=0.5) as s:
        assert (await s.get("/whoami", s.issuer.mint())).status_code == 200
        assert s.issuer.jwks_requests == 1
        await asyncio.sleep(0.6)
        s.issuer.keys.append(public_jwk(rsa_key("rotated"), "rsa-2"))
        rotated = s.issuer.mint(key=rsa_key("rotated"), kid="rsa-2")
        assert (await s.get("/whoami", rotated)).status_code == 200
        assert s.issuer.jwks_requests == 2
        await asyncio.sleep(0.6)
        flood = [s.issuer.mint(key=rsa_key("forger"), kid=f"bogus-{i}") for i in range(40)]
        started = time.monotonic()
        responses = await asyncio.gather(*(s.get("/whoami", t) for t in flood))
        elapsed = time.monotonic() - started
        assert {r.status_code for r in responses} == {401}
        # One refetch per 0.5 s interval at most, however many unknown kids arrive (on an idle machine
        # the flood takes well under 0.5 s: exactly one refetch).
        refetches = s.issuer.jwks_requests - 2
        assert 1 <= refetches <= 1 + int(elapsed / 0.5)
        assert refetches < len(flood) / 4


async def test_decisions_are_counted_by_outcome() -> None:
    def count(outcome: str) -> float:
        return REGISTRY.get_sample_value("mcp_auth_inbound_decisions_total", {"outcome": outcome}) or 0.0

    before = {o: count(o) for o in ("allowed", "missing_token", "invalid_token")}
    async with stack() as s:
        await s.get("/whoami", s.issuer.mint())
        await s.get("/whoami")
        await s.get("/whoami", "garbage")
    assert count("allowed") == before["allowed"] + 1
    assert count("missing_token") == before["missing_token"] + 1
    assert count("invalid_token") == before["invalid_token"] + 1


CLIENT_CREDENTIALS = {
    "type": "oauth2ClientCredentials",
    "clientId": "proxy",
    "clientSecretRef": {"env": "CLIENT_SECRET"},
    "scopes": ["backend"],
}


async def test_remote_proxy_injects_client_credentials_never_the_inbound_token() -> None:
    async with stack(
        CLIENT_CREDENTIALS,
        environ={"CLIENT_SECRET": "s3cret", "TENANT": "acme"},
        header_forward={
            "addPlaintextHeaders": {"X-Team": "platform"},
            "addHeadersFromSecret": [{"headerName": "X-Tenant", "valueSecretRef": {"env": "TENANT"}}],
        },
    ) as s:
        inbound = s.issuer.mint()
        for _ in range(3):
            assert (await s.post_mcp(inbound)).status_code == 200
        assert [h["authorization"] for h in s.backend_seen] == ["Bearer cc-token-1"] * 3
        assert s.backend_seen[0]["x-team"] == "platform"
        assert s.backend_seen[0]["x-tenant"] == "acme"
        assert len(s.issuer.token_requests) == 1
        assert (
            s.issuer.token_requests[0]["_authorization"]
            == "Basic " + base64.b64encode(b"proxy:s3cret").decode()
        )
        assert all(inbound not in json.dumps(h) for h in s.backend_seen)
        assert inbound not in json.dumps(s.issuer.token_requests)


async def test_token_about_to_expire_is_refreshed() -> None:
    async with stack(
        {**CLIENT_CREDENTIALS, "refreshMarginSeconds": 1}, environ={"CLIENT_SECRET": "s3cret"}
    ) as s:
        s.issuer.expires_in = 3  # fresh for 2 s (3 s minus the 1 s margin), then refreshed
        inbound = s.issuer.mint()
        await s.post_mcp(inbound)
        await s.post_mcp(inbound)
        await asyncio.sleep(2.1)
        await s.post_mcp(inbound)
        assert [h["authorization"] for h in s.backend_seen] == [
            "Bearer cc-token-1",
            "Bearer cc-token-1",
            "Bearer cc-token-2",
        ]


async def test_failing_token_endpoint_backs_off() -> None:
    async with stack(CLIENT_CREDENTIALS, environ={"CLIENT_SECRET": "s3cret"}) as s:
        s.issuer.token_status = 503
        provider = build_outbound_provider(
            parse_outbound_auth({**CLIENT_CREDENTIALS, "tokenUrl": f"{s.issuer.url}/token"}),
            http=s.client,
            environ={"CLIENT_SECRET": "s3cret"},
            retry_backoff=Backoff(base=0.01, cap=0.02),
        )
        results = await asyncio.gather(*(provider.headers(None) for _ in range(30)), return_exceptions=True)
        assert all(isinstance(r, OutboundAuthError) and "HTTP 503" in str(r) for r in results)
        for _ in range(30):
            with pytest.raises(OutboundAuthError):
                await provider.headers(None)
        assert len(s.issuer.token_requests) == 3  # 3 attempts, then a cool-down: 60 calls, 3 requests
        await provider.aclose()


async def test_token_exchange_upstream_gets_an_exchanged_token() -> None:
    exchange = {
        "type": "tokenExchange",
        "clientId": "proxy",
        "clientSecretRef": {"env": "CLIENT_SECRET"},
        "audience": "backend",
    }
    async with stack(exchange, environ={"CLIENT_SECRET": "s3cret"}) as s:
        alice, bob = s.issuer.mint(), s.issuer.mint(sub="bob")
        for token in (alice, alice, bob):
            assert (await s.post_mcp(token)).status_code == 200
        sent = [h["authorization"] for h in s.backend_seen]
        assert sent[0] == sent[1] != sent[2]
        assert all(v.startswith("Bearer exchanged-") for v in sent)
        assert [r["subject_token"] for r in s.issuer.token_requests] == [alice, bob]
        assert all(alice not in json.dumps(h) and bob not in json.dumps(h) for h in s.backend_seen)
