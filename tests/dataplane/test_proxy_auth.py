"""Inbound OIDC end to end through the proxy (``build_proxy_app``), and what the backend receives.

Everything runs in the test's event loop on 127.0.0.1: a test issuer (discovery + JWKS + token endpoint,
from ``tests.support.auth``), an HTTP MCP backend that records the headers of every request it gets, and the
proxy app with ``oidc`` (and, for the outbound tests, ``backend.auth``) in its config. Tokens are minted
here with PyJWT.
"""

from __future__ import annotations

import json
import logging
import time

import pytest

from api.proxy_config import ProxyConfig, ProxyConfigError
from gateway.observability import AUDIT_LOGGER
from gateway.proxy import build_proxy_app
from gateway.transports import transport_for
from tests.support.auth import (
    Issuer,
    challenge,
    ec_key,
    hs256_with_public_key,
    rsa_key,
    unsigned_token,
)
from tests.support.proxy_auth import stack

pytestmark = pytest.mark.slow


@pytest.mark.usefixtures("structured_logs")
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
    audits = [r.msg for r in caplog.records if r.name == AUDIT_LOGGER]
    assert audits and all(isinstance(a, dict) and a["event"] == "tools/call" for a in audits), audits
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
        # The auth layer's process-wide counters are scraped with the proxy's own metrics.
        scraped = (await s.http.get(f"{s.proxy_url}/metrics")).text
        assert 'mcp_auth_inbound_decisions_total{outcome="missing_token"}' in scraped
        assert "mcp_proxy_requests_total" in scraped or "mcp_proxy_fast_path_enabled" in scraped
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
