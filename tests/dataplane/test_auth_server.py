"""The proxy's embedded authorization server, end to end, as an MCP client and a user meet it.

A real ``mcp-operator proxy`` process is the authorization server of its own ``/mcp``; the upstream
identity provider is the independent ``oidc-provider-mock``; the backend is the in-repo MCP fixture
server behind a spy that records what the proxy sends it. The SDK's OAuth client discovers the server,
registers, signs the user in through the upstream (a browser following redirects) and calls tools.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import jwt
import pytest

from tests.dataplane.proxyutil import free_port, run_proxy, serve_asgi
from tests.support.auth import bind
from tests.support.authserver import (
    PROXY_ENV,
    Browser,
    MemoryTokens,
    oauth_client,
    proxy_config,
    signed_in_client,
    signing_key,
)
from tests.support.redis_server import RedisServer, running_sentinel
from tests.support.remote_proxy import Spy, client_for, remote_server

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning:authlib.*")]


@contextlib.asynccontextmanager
async def proxy_process(
    config: dict[str, Any], tmp: Path, port: int, env: dict[str, str] | None = None
) -> AsyncIterator[str]:
    with contextlib.ExitStack() as stack:
        run = run_proxy(
            config=config, tmp=tmp, env={**PROXY_ENV, **(env or {})}, port=port, log=tmp / "proxy.log"
        )
        base = await asyncio.to_thread(stack.enter_context, run)
        try:
            yield base
        finally:
            await asyncio.to_thread(stack.close)


@contextlib.asynccontextmanager
async def surroundings(tmp: Path, upstream: str, **server: Any) -> AsyncIterator[tuple[str, Spy]]:
    """The backend behind its spy and the proxy in front of it; yields the proxy's URL and the spy."""
    spy_sock, spy_url = bind()
    with remote_server("fixture") as (backend, _):
        spy = Spy(backend)
        async with serve_asgi((spy_sock, spy.app())):
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            config = proxy_config(base, f"{spy_url}/mcp", upstream, signing_key(tmp), **server)
            async with proxy_process(config, tmp, port) as url:
                yield url, spy


async def userinfo(upstream: str, token: str) -> httpx2.Response:
    async with httpx2.AsyncClient(timeout=10) as http:
        return await http.get(f"{upstream}/userinfo", headers={"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_a_client_signs_in_upstream_and_the_backend_receives_the_upstream_token(
    mode: str, provider: str, tmp_path: Path
) -> None:
    async with surroundings(tmp_path, provider) as (base, spy):
        browser, storage = Browser("alice@example.com"), MemoryTokens()
        async with signed_in_client(base, oauth_client(base, browser, storage), mode) as client:
            result = await client.call_tool("echo", {"text": "through the embedded server"})
            assert "through the embedded server" in json.dumps(result.model_dump(mode="json"))

        # The user went to the upstream, back to the proxy's callback, then to the client.
        assert browser.redirected[0].startswith(f"{provider}/oauth2/authorize?")
        assert browser.redirected[1].startswith(f"{base}/oauth/callback?")
        assert storage.tokens is not None and storage.tokens.refresh_token
        ours = storage.tokens.access_token
        claims = jwt.decode(ours, options={"verify_signature": False})
        assert claims["iss"] == base and claims["aud"] == f"{base}/mcp"
        assert claims["sub"] == "alice@example.com"
        assert 3500 <= claims["exp"] - claims["iat"] <= 3600  # ToolHive's default access lifespan

        # The backend saw the upstream's access token (valid at the upstream), never ours.
        bearers = {r["headers"].get("authorization") for r in spy.seen if r["path"] == "/mcp"}
        assert len(bearers) == 1, bearers
        backend_bearer = next(iter(bearers))
        assert backend_bearer is not None and ours not in backend_bearer
        profile = await userinfo(provider, backend_bearer.removeprefix("Bearer "))
        assert profile.status_code == 200 and profile.json()["sub"] == "alice@example.com"


async def test_without_upstream_token_injection_the_backend_gets_no_credential(
    provider: str, tmp_path: Path
) -> None:
    async with surroundings(tmp_path, provider, disableUpstreamTokenInjection=True) as (base, spy):
        auth = oauth_client(base, Browser("dave@example.com"), MemoryTokens())
        async with signed_in_client(base, auth, "auto") as client:
            result = await client.call_tool("echo", {"text": "anonymous backend"})
            assert "anonymous backend" in json.dumps(result.model_dump(mode="json"))
        seen = [r for r in spy.seen if r["path"] == "/mcp"]
        assert seen and all("authorization" not in r["headers"] for r in seen)


async def test_discovery_documents_and_keys(provider: str, tmp_path: Path) -> None:
    async with surroundings(tmp_path, provider) as (base, _), httpx2.AsyncClient(timeout=10) as http:
        unauthenticated = await http.post(f"{base}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert unauthenticated.status_code == 401
        challenge = unauthenticated.headers["www-authenticate"]
        assert f'resource_metadata="{base}/.well-known/oauth-protected-resource/mcp"' in challenge
        resource = (await http.get(f"{base}/.well-known/oauth-protected-resource/mcp")).json()
        assert resource["authorization_servers"] == [base] and resource["resource"] == f"{base}/mcp"
        for path in ("oauth-authorization-server", "openid-configuration"):
            metadata = (await http.get(f"{base}/.well-known/{path}")).json()
            assert metadata["issuer"] == base
            assert metadata["authorization_endpoint"] == f"{base}/oauth/authorize"
            assert metadata["registration_endpoint"] == f"{base}/oauth/register"
            assert metadata["code_challenge_methods_supported"] == ["S256"]
            assert metadata["token_endpoint_auth_methods_supported"] == ["none"]
        keys = (await http.get(metadata["jwks_uri"])).json()["keys"]
        assert [(k["kty"], k["alg"]) for k in keys] == [("RSA", "RS256")]
        assert all("d" not in k for k in keys)  # public halves only
        confidential = await http.post(
            f"{base}/oauth/register",
            json={
                "redirect_uris": ["https://app.example.com/cb"],
                "token_endpoint_auth_method": "client_secret_post",
            },
        )
        assert confidential.status_code == 400
        assert "public clients" in confidential.json()["error_description"]


async def test_wrong_expired_and_foreign_tokens_get_401_with_the_challenge(
    provider: str, tmp_path: Path
) -> None:
    async with surroundings(tmp_path, provider) as (base, _):
        storage = MemoryTokens()
        auth = oauth_client(base, Browser("bob@example.com"), storage)
        async with signed_in_client(base, auth, "legacy") as client:
            await client.list_tools()
        assert storage.tokens is not None
        claims = jwt.decode(storage.tokens.access_token, options={"verify_signature": False})
        header = jwt.get_unverified_header(storage.tokens.access_token)
        (tmp_path / "foreign").mkdir()
        foreign_key = signing_key(tmp_path / "foreign")  # a key this server does not know, same kid
        expired = {**claims, "iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}
        foreign_issuer = {**claims, "iss": "https://elsewhere.example.com"}
        forged = jwt.encode(
            claims, foreign_key.read_text(), algorithm="RS256", headers={"kid": header["kid"]}
        )
        cases = {
            "not a JWT": "garbage",
            "forged signature": forged,
            "expired": _resigned(tmp_path, expired, header["kid"]),
            "foreign issuer": _resigned(tmp_path, foreign_issuer, header["kid"]),
        }
        async with httpx2.AsyncClient(timeout=10) as http:
            for name, token in cases.items():
                response = await http.post(
                    f"{base}/mcp",
                    json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Accept": "application/json, text/event-stream",
                    },
                )
                assert response.status_code == 401, name
                challenge = response.headers["www-authenticate"]
                assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge, name
                assert "resource_metadata=" in challenge, name


def _resigned(tmp: Path, claims: dict[str, Any], kid: str) -> str:
    """``claims`` signed with the proxy's own key (the test wrote it): only the claims are wrong."""
    return jwt.encode(claims, (tmp / "signing.pem").read_text(), algorithm="RS256", headers={"kid": kid})


async def test_with_redis_through_sentinel_a_restarted_proxy_keeps_the_sign_in(
    provider: str, tmp_path: Path
) -> None:
    """Clients, refresh tokens and upstream tokens live in Redis (reached through Sentinel with an ACL
    user): after a restart the old access token still works and the refresh token still refreshes."""
    (tmp_path / "redis").mkdir()
    master = RedisServer(tmp_path / "redis", acl_user=("mcp-auth", "redis-secret"))
    master.start()
    try:
        with running_sentinel(tmp_path / "redis", master, "auth-master") as sentinel:
            storage_config = {
                "type": "redis",
                "redis": {
                    "sentinelMaster": "auth-master",
                    "sentinelAddresses": [sentinel],
                    "usernameRef": {"env": "REDIS_USER"},
                    "passwordRef": {"env": "REDIS_PASSWORD"},
                },
            }
            env = {"REDIS_USER": "mcp-auth", "REDIS_PASSWORD": "redis-secret"}
            await _restart_keeps_the_sign_in(provider, tmp_path, storage_config, env)
            assert any(key.startswith(b"mcp-auth:refresh:") for key in master.client().keys("*"))
    finally:
        master.stop()


async def _restart_keeps_the_sign_in(
    provider: str, tmp: Path, storage: dict[str, Any], env: dict[str, str]
) -> None:
    spy_sock, spy_url = bind()
    with remote_server("fixture") as (backend, _):
        async with serve_asgi((spy_sock, Spy(backend).app())):
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            config = proxy_config(base, f"{spy_url}/mcp", provider, signing_key(tmp), storage=storage)
            tokens = MemoryTokens()
            async with proxy_process(config, tmp, port, env):
                auth = oauth_client(base, Browser("carol@example.com"), tokens)
                async with signed_in_client(base, auth, "legacy") as client:
                    await client.list_tools()
            assert tokens.tokens is not None and tokens.client is not None
            async with proxy_process(config, tmp, port, env):
                async with client_for(
                    base, tokens.tokens.access_token
                ) as client:  # the upstream token survived
                    assert "echo" in {t.name for t in (await client.list_tools()).tools}
                async with httpx2.AsyncClient(timeout=10) as http:
                    refreshed = await http.post(
                        f"{base}/oauth/token",
                        data={
                            "grant_type": "refresh_token",
                            "refresh_token": str(tokens.tokens.refresh_token),
                            "client_id": str(tokens.client.client_id),
                        },
                    )
                assert refreshed.status_code == 200, refreshed.text
                async with client_for(base, refreshed.json()["access_token"]) as client:
                    result = await client.call_tool("echo", {"text": "after the restart"})
                    assert "after the restart" in json.dumps(result.model_dump(mode="json"))
