"""Inbound OIDC end to end through the proxy (``build_proxy_app``), and what the backend receives.

Everything runs in the test's event loop on 127.0.0.1: a test issuer (discovery + JWKS + token endpoint,
from ``test_auth_flow``), an HTTP MCP backend that records the headers of every request it gets, and the
proxy app with ``oidc`` (and, for the outbound tests, ``backend.auth``) in its config. Tokens are minted
here with PyJWT.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server import MCPServer
from starlette.types import ASGIApp, Receive, Scope, Send

from api.proxy_config import ProxyConfig, ProxyConfigError
from gateway.observability import AUDIT_LOGGER
from gateway.proxy import build_proxy_app
from gateway.transports import describe_backend, needs_caller_sessions, transport_for
from tests.dataplane.proxyutil import serve_asgi
from tests.dataplane.test_auth_flow import (
    AUDIENCE,
    Issuer,
    bind,
    challenge,
    ec_key,
    hs256_with_public_key,
    rsa_key,
    unsigned_token,
)

pytestmark = pytest.mark.slow


def recording_backend(seen: list[dict[str, str]]) -> ASGIApp:
    """An MCP server (tool ``echo``) that records the headers of every HTTP request it receives."""
    server = MCPServer("recording-backend")

    @server.tool()
    def echo(text: str) -> str:
        """Return the text."""
        return text

    app = server.streamable_http_app()

    async def recorder(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            seen.append({k.decode().lower(): v.decode() for k, v in scope["headers"]})
        await app(scope, receive, send)

    return _LifespanPassthrough(recorder, app)


class _LifespanPassthrough:
    """Route ASGI lifespan to the Starlette app (its session manager) and HTTP to the recorder."""

    def __init__(self, recorder: ASGIApp, app: ASGIApp) -> None:
        self.recorder = recorder
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await (self.app if scope["type"] == "lifespan" else self.recorder)(scope, receive, send)


@dataclass
class Stack:
    issuer: Issuer
    proxy_url: str
    backend_seen: list[dict[str, str]]
    http: httpx2.AsyncClient

    async def post_ping(self, token: str | None) -> httpx2.Response:
        headers = {"accept": "application/json, text/event-stream"}
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        return await self.http.post(f"{self.proxy_url}/mcp", json=body, headers=headers)

    @contextlib.asynccontextmanager
    async def client(self, token: str) -> AsyncIterator[Client]:
        async with httpx2.AsyncClient(headers={"authorization": f"Bearer {token}"}, timeout=30) as http:
            transport = streamable_http_client(f"{self.proxy_url}/mcp", http_client=http)
            async with Client(transport, mode="auto") as client:
                yield client


@contextlib.asynccontextmanager
async def stack(*, backend_auth: dict[str, Any] | None = None, **oidc: Any) -> AsyncIterator[Stack]:
    issuer = Issuer()
    seen: list[dict[str, str]] = []
    (issuer_sock, issuer.url), (backend_sock, backend_url), (proxy_sock, proxy_url) = bind(), bind(), bind()
    backend: dict[str, Any] = {"type": "http", "url": f"{backend_url}/mcp"}
    if backend_auth is not None:
        backend["auth"] = {**backend_auth, "tokenUrl": f"{issuer.url}/token"}
    config = ProxyConfig.model_validate(
        {
            "name": "auth-proxy",
            "port": int(proxy_url.rsplit(":", 1)[1]),
            "backend": backend,
            "oidc": {"issuer": issuer.url, "audience": AUDIENCE, **oidc},
        }
    )
    description = describe_backend(config.backend)
    if needs_caller_sessions(config.backend):
        backend_config = config.backend
        app, _ = build_proxy_app(
            config,
            None,
            description=description,
            caller_transport=lambda subject: transport_for(backend_config, subject=subject),
        )
    else:
        app, _ = build_proxy_app(config, transport_for(config.backend), description=description)
    async with (
        httpx2.AsyncClient(timeout=30) as http,
        serve_asgi((issuer_sock, issuer.app()), (backend_sock, recording_backend(seen))),
        serve_asgi((proxy_sock, app)),
    ):
        yield Stack(issuer, proxy_url, seen, http)


async def test_valid_token_passes_and_never_reaches_the_backend(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)
    async with stack() as s:
        async with s.client(s.issuer.mint()) as client:
            tools = await client.list_tools()
            assert [t.name for t in tools.tools] == ["echo"]
            result = await client.call_tool("echo", {"text": "authorized"})
            assert result.structured_content == {"result": "authorized"}
        async with s.client(s.issuer.mint(key=ec_key("issuer"), alg="ES256", kid="ec-1")) as client:
            assert (await client.call_tool("echo", {"text": "es256"})).structured_content == {
                "result": "es256"
            }
        assert s.backend_seen, "the backend received nothing"
        assert all("authorization" not in headers for headers in s.backend_seen)
        assert not any(s.issuer.url in json.dumps(headers) for headers in s.backend_seen)
    audits = [json.loads(r.getMessage()) for r in caplog.records if r.name == AUDIT_LOGGER]
    assert {a["caller"] for a in audits} == {"alice"}


async def test_missing_token_is_challenged_and_metadata_is_served() -> None:
    async with stack() as s:
        response = await s.post_ping(None)
        assert response.status_code == 401
        params = challenge(response)
        assert "error" not in params
        assert params["resource_metadata"] == f"{s.proxy_url}/.well-known/oauth-protected-resource/mcp"
        metadata = await s.http.get(params["resource_metadata"])
        assert metadata.status_code == 200
        assert metadata.json()["resource"] == f"{s.proxy_url}/mcp"
        assert metadata.json()["authorization_servers"] == [s.issuer.url]
        sse = await s.http.get(f"{s.proxy_url}/sse")
        assert sse.status_code == 401
        # Probes and metrics stay open for kubelet and Prometheus.
        for path in ("/readyz", "/health", "/metrics"):
            assert (await s.http.get(f"{s.proxy_url}{path}")).status_code == 200, path
        assert not s.backend_seen or all("authorization" not in h for h in s.backend_seen)


def _bad_tokens(issuer: Issuer) -> dict[str, str]:
    now = int(time.time())
    return {
        "expired": issuer.mint(exp=now - 120, iat=now - 600),
        "not yet valid": issuer.mint(nbf=now + 600),
        "wrong audience": issuer.mint(aud="another-service"),
        "wrong issuer": issuer.mint(iss="https://evil.example"),
        "bad signature": issuer.mint(key=rsa_key("forger")),
        "alg none": unsigned_token(issuer),
        "HS256 with the RSA public key": hs256_with_public_key(issuer),
    }


async def test_bad_tokens_are_refused_with_invalid_token() -> None:
    async with stack() as s:
        for case, token in _bad_tokens(s.issuer).items():
            response = await s.post_ping(token)
            assert response.status_code == 401, case
            assert challenge(response)["error"] == "invalid_token", case
        async with s.client(s.issuer.mint()) as client:
            assert (await client.call_tool("echo", {"text": "ok"})).structured_content == {"result": "ok"}
        calls_with_tokens = [h for h in s.backend_seen if "authorization" in h]
        assert calls_with_tokens == []


async def test_missing_scope_is_403_insufficient_scope() -> None:
    async with stack(requiredScopes=["mcp:admin"]) as s:
        response = await s.post_ping(s.issuer.mint(scope="mcp:tools"))
        assert response.status_code == 403
        params = challenge(response)
        assert params["error"] == "insufficient_scope"
        assert params["scope"] == "mcp:admin"
        async with s.client(s.issuer.mint(scope="mcp:tools mcp:admin")) as client:
            assert (await client.call_tool("echo", {"text": "ok"})).structured_content == {"result": "ok"}


async def test_backend_gets_client_credentials_token_not_the_callers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROXY_CLIENT_SECRET", "s3cret")
    credentials = {
        "type": "oauth2ClientCredentials",
        "clientId": "mcp-proxy",
        "clientSecretRef": {"env": "PROXY_CLIENT_SECRET"},
        "scopes": ["backend"],
    }
    async with stack(backend_auth=credentials) as s:
        inbound = s.issuer.mint()
        async with s.client(inbound) as client:
            for n in range(3):
                result = await client.call_tool("echo", {"text": f"call {n}"})
                assert result.structured_content == {"result": f"call {n}"}
        assert s.backend_seen
        assert {h.get("authorization") for h in s.backend_seen} == {"Bearer cc-token-1"}
        assert not any(inbound in json.dumps(h) for h in s.backend_seen)
        grants = [r["grant_type"] for r in s.issuer.token_requests]
        assert grants == ["client_credentials"], "the cached token is reused for every backend request"


async def test_token_exchange_gives_each_caller_their_own_backend_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROXY_CLIENT_SECRET", "s3cret")
    exchange = {
        "type": "tokenExchange",
        "clientId": "mcp-proxy",
        "clientSecretRef": {"env": "PROXY_CLIENT_SECRET"},
        "audience": "backend",
    }
    async with stack(backend_auth=exchange) as s:
        alice, bob = s.issuer.mint(), s.issuer.mint(sub="bob")
        async with s.client(alice) as as_alice, s.client(bob) as as_bob:
            for client, who in ((as_alice, "alice"), (as_bob, "bob"), (as_alice, "alice again")):
                assert (await client.call_tool("echo", {"text": who})).structured_content == {"result": who}
        subjects = [r["subject_token"] for r in s.issuer.token_requests]
        assert set(subjects) == {alice, bob}, "each caller's token is exchanged, once per session"
        seen_tokens = {h.get("authorization") for h in s.backend_seen}
        assert None not in seen_tokens and len(seen_tokens) == 2
        assert all(t.startswith("Bearer exchanged-") for t in seen_tokens if t)
        assert not any(tok in json.dumps(h) for h in s.backend_seen for tok in (alice, bob))
        sessions = {h["authorization"]: h["mcp-session-id"] for h in s.backend_seen if "mcp-session-id" in h}
        assert len(set(sessions.values())) == 2, "alice and bob share a backend session"


def test_token_exchange_needs_inbound_auth() -> None:
    config = ProxyConfig.model_validate(
        {
            "backend": {
                "type": "http",
                "url": "http://127.0.0.1:9/mcp",
                "auth": {
                    "type": "tokenExchange",
                    "tokenUrl": "http://127.0.0.1:9/token",
                    "clientId": "proxy",
                    "clientSecretRef": {"env": "X"},
                    "audience": "backend",
                },
            }
        }
    )
    with pytest.raises(ProxyConfigError, match="tokenExchange"):
        transport_for(config.backend)  # a shared session cannot carry per-caller credentials
    with pytest.raises(ProxyConfigError, match="oidc"):
        build_proxy_app(
            config, None, description="x", caller_transport=lambda s: transport_for(config.backend, subject=s)
        )
