"""Outbound credential providers against a token endpoint behind a mock transport, with fake time."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx2
import pytest

from api.auth_config import HeaderForwardConfig, parse_outbound_auth
from gateway.auth.outbound import (
    Backoff,
    CredentialProvider,
    OutboundAuthError,
    TokenEndpointError,
    build_outbound_provider,
)
from tests.support.clock import FakeClock

TOKEN_URL = "https://auth.example.com/token"
INBOUND = "eyJhbGciOiJSUzI1NiJ9.inbound-user-token.sig"


class TokenServer:
    """Records token requests; ``respond`` decides the answer."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.issued = 0
        self.respond: Callable[[dict[str, Any]], httpx2.Response] = self.ok
        self.gate: asyncio.Event | None = None

    def ok(self, form: dict[str, Any]) -> httpx2.Response:
        self.issued += 1
        return httpx2.Response(
            200, json={"access_token": f"upstream-{self.issued}", "token_type": "Bearer", "expires_in": 600}
        )

    async def handler(self, request: httpx2.Request) -> httpx2.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        form["_authorization"] = request.headers.get("authorization")
        self.requests.append(form)
        if self.gate is not None:
            await self.gate.wait()
        return self.respond(form)


@pytest.fixture
def server() -> TokenServer:
    return TokenServer()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(5000.0)


def build(
    config: dict[str, Any],
    server: TokenServer,
    clock: FakeClock,
    environ: dict[str, str] | None = None,
    header_forward: dict[str, Any] | None = None,
) -> CredentialProvider:
    http = httpx2.AsyncClient(transport=httpx2.MockTransport(server.handler))
    return build_outbound_provider(
        parse_outbound_auth(config),
        header_forward=HeaderForwardConfig.model_validate(header_forward) if header_forward else None,
        http=http,
        environ=environ if environ is not None else {"CLIENT_SECRET": "s3cret"},
        clock=clock,
        retry_backoff=Backoff(base=0.0, cap=0.0),
        cooldown_backoff=Backoff(base=10.0, cap=60.0, rand=lambda: 1.0),
    )


CLIENT_CREDENTIALS = {
    "type": "oauth2ClientCredentials",
    "tokenUrl": TOKEN_URL,
    "clientId": "proxy",
    "clientSecretRef": {"env": "CLIENT_SECRET"},
    "scopes": ["read", "write"],
    "audience": "https://api.example.com",
}
TOKEN_EXCHANGE = {
    "type": "tokenExchange",
    "tokenUrl": TOKEN_URL,
    "clientId": "proxy",
    "clientSecretRef": {"env": "CLIENT_SECRET"},
    "audience": "backend",
    "scopes": ["backend:read"],
}


async def test_header_injection_reads_the_secret() -> None:
    provider = build_outbound_provider(
        parse_outbound_auth(
            {"type": "headerInjection", "headerName": "X-API-Key", "valueSecretRef": {"env": "API_KEY"}}
        ),
        environ={"API_KEY": "key-123"},
    )
    assert await provider.headers(INBOUND) == {"X-API-Key": "key-123"}


async def test_bearer_token_from_a_file_follows_rotation(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("first\n")
    provider = build_outbound_provider(
        parse_outbound_auth({"type": "bearerToken", "tokenSecretRef": {"file": str(token_file)}})
    )
    assert await provider.headers(INBOUND) == {"Authorization": "Bearer first"}
    token_file.write_text("second\n")
    os.utime(token_file, ns=(1, 1))  # a new mtime, as the kubelet's atomic swap gives
    assert await provider.headers(INBOUND) == {"Authorization": "Bearer second"}


async def test_missing_secret_names_the_field() -> None:
    provider = build_outbound_provider(
        parse_outbound_auth({"type": "bearerToken", "tokenSecretRef": {"env": "UPSTREAM_TOKEN"}}), environ={}
    )
    with pytest.raises(
        OutboundAuthError, match=r"bearerToken\.tokenSecretRef: environment variable UPSTREAM_TOKEN"
    ):
        await provider.headers(None)


async def test_client_credentials_token_is_cached(server: TokenServer, clock: FakeClock) -> None:
    provider = build(CLIENT_CREDENTIALS, server, clock)
    assert await provider.headers(INBOUND) == {"Authorization": "Bearer upstream-1"}
    clock.now += 500
    assert await provider.headers(INBOUND) == {"Authorization": "Bearer upstream-1"}
    assert len(server.requests) == 1
    form = server.requests[0]
    assert form["grant_type"] == "client_credentials"
    assert form["scope"] == "read write"
    assert form["audience"] == "https://api.example.com"
    assert form["_authorization"] == "Basic " + base64.b64encode(b"proxy:s3cret").decode()
    assert INBOUND not in str(server.requests)


async def test_client_credentials_token_about_to_expire_is_refreshed(
    server: TokenServer, clock: FakeClock
) -> None:
    provider = build(CLIENT_CREDENTIALS, server, clock)
    await provider.headers(None)
    clock.now += 600 - 59  # inside the default 60 s refresh margin
    assert await provider.headers(None) == {"Authorization": "Bearer upstream-2"}
    assert len(server.requests) == 2


async def test_concurrent_callers_share_one_refresh(server: TokenServer, clock: FakeClock) -> None:
    provider = build(CLIENT_CREDENTIALS, server, clock)
    server.gate = asyncio.Event()
    calls = [asyncio.ensure_future(provider.headers(None)) for _ in range(20)]
    await asyncio.sleep(0.01)
    server.gate.set()
    results = await asyncio.gather(*calls)
    assert {r["Authorization"] for r in results} == {"Bearer upstream-1"}
    assert len(server.requests) == 1


async def test_failing_endpoint_backs_off(server: TokenServer, clock: FakeClock) -> None:
    server.respond = lambda form: httpx2.Response(503, json={"error": "temporarily_unavailable"})
    provider = build(CLIENT_CREDENTIALS, server, clock)
    with pytest.raises(TokenEndpointError, match=r"answered HTTP 503.*retrying with backoff") as caught:
        await provider.headers(None)
    assert caught.value.transient
    assert len(server.requests) == 3  # one call = 3 attempts
    for _ in range(100):  # a burst of requests during the cool-down adds no token requests
        with pytest.raises(TokenEndpointError):
            await provider.headers(None)
    assert len(server.requests) == 3
    clock.now += 10.1  # cool-down (10 s, then 20 s, ...) elapsed: one more round
    with pytest.raises(TokenEndpointError):
        await provider.headers(None)
    assert len(server.requests) == 6
    clock.now += 10.1  # still inside the doubled cool-down
    with pytest.raises(TokenEndpointError):
        await provider.headers(None)
    assert len(server.requests) == 6
    server.respond = server.ok
    clock.now += 10.1
    assert await provider.headers(None) == {"Authorization": "Bearer upstream-1"}


async def test_invalid_client_is_not_retried_and_names_the_fields(
    server: TokenServer, clock: FakeClock
) -> None:
    server.respond = lambda form: httpx2.Response(401, json={"error": "invalid_client"})
    provider = build(CLIENT_CREDENTIALS, server, clock)
    with pytest.raises(TokenEndpointError, match="check clientId and the secret behind clientSecretRef"):
        await provider.headers(None)
    assert len(server.requests) == 1


async def test_old_token_is_served_while_refresh_fails(server: TokenServer, clock: FakeClock) -> None:
    provider = build(CLIENT_CREDENTIALS, server, clock)
    await provider.headers(None)
    server.respond = lambda form: httpx2.Response(500)
    clock.now += 560  # inside the refresh margin, not yet expired
    assert await provider.headers(None) == {"Authorization": "Bearer upstream-1"}
    clock.now += 60  # expired now
    with pytest.raises(TokenEndpointError):
        await provider.headers(None)


async def test_client_secret_post(server: TokenServer, clock: FakeClock) -> None:
    provider = build({**CLIENT_CREDENTIALS, "clientAuthMethod": "client_secret_post"}, server, clock)
    await provider.headers(None)
    assert server.requests[0]["client_id"] == "proxy"
    assert server.requests[0]["client_secret"] == "s3cret"
    assert server.requests[0]["_authorization"] is None


async def test_token_exchange_sends_the_inbound_token_as_subject(
    server: TokenServer, clock: FakeClock
) -> None:
    provider = build(TOKEN_EXCHANGE, server, clock)
    headers = await provider.headers(INBOUND)
    assert headers == {"Authorization": "Bearer upstream-1"}
    form = server.requests[0]
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:token-exchange"
    assert form["subject_token"] == INBOUND
    assert form["subject_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert form["audience"] == "backend"
    assert form["scope"] == "backend:read"
    assert INBOUND not in str(headers)


async def test_token_exchange_caches_per_subject(server: TokenServer, clock: FakeClock) -> None:
    provider = build(TOKEN_EXCHANGE, server, clock)
    first = await provider.headers("token-of-alice")
    again = await provider.headers("token-of-alice")
    other = await provider.headers("token-of-bob")
    assert first == again != other
    assert len(server.requests) == 2
    clock.now += 600
    assert await provider.headers("token-of-alice") == {"Authorization": "Bearer upstream-3"}


async def test_token_exchange_concurrent_same_subject_shares_one_exchange(
    server: TokenServer, clock: FakeClock
) -> None:
    provider = build(TOKEN_EXCHANGE, server, clock)
    server.gate = asyncio.Event()
    calls = [asyncio.ensure_future(provider.headers("token-of-alice")) for _ in range(10)]
    await asyncio.sleep(0.01)
    server.gate.set()
    assert len({r["Authorization"] for r in await asyncio.gather(*calls)}) == 1
    assert len(server.requests) == 1


async def test_token_exchange_without_inbound_token_explains(server: TokenServer, clock: FakeClock) -> None:
    provider = build(TOKEN_EXCHANGE, server, clock)
    with pytest.raises(OutboundAuthError, match="enable inbound OIDC"):
        await provider.headers(None)
    assert server.requests == []


async def test_token_exchange_invalid_grant_does_not_block_other_users(
    server: TokenServer, clock: FakeClock
) -> None:
    server.respond = lambda form: (
        httpx2.Response(400, json={"error": "invalid_grant"})
        if form["subject_token"] == "revoked"
        else server.ok(form)
    )
    provider = build(TOKEN_EXCHANGE, server, clock)
    with pytest.raises(TokenEndpointError, match="invalid_grant"):
        await provider.headers("revoked")
    assert await provider.headers("token-of-bob") == {"Authorization": "Bearer upstream-1"}


async def test_token_exchange_custom_header(server: TokenServer, clock: FakeClock) -> None:
    provider = build({**TOKEN_EXCHANGE, "externalTokenHeaderName": "X-Upstream-Token"}, server, clock)
    assert await provider.headers(INBOUND) == {"X-Upstream-Token": "upstream-1"}


async def test_header_forward_with_a_credential(server: TokenServer, clock: FakeClock) -> None:
    provider = build(
        CLIENT_CREDENTIALS,
        server,
        clock,
        environ={"CLIENT_SECRET": "s3cret", "TENANT": "acme"},
        header_forward={
            "addPlaintextHeaders": {"X-Team": "platform"},
            "addHeadersFromSecret": [{"headerName": "X-Tenant", "valueSecretRef": {"env": "TENANT"}}],
        },
    )
    assert await provider.headers(INBOUND) == {
        "X-Team": "platform",
        "X-Tenant": "acme",
        "Authorization": "Bearer upstream-1",
    }
    await provider.aclose()


def test_header_forward_cannot_set_the_credential_header() -> None:
    with pytest.raises(OutboundAuthError, match="remove it from headerForward"):
        build_outbound_provider(
            parse_outbound_auth({"type": "bearerToken", "tokenSecretRef": {"env": "T"}}),
            header_forward=HeaderForwardConfig.model_validate(
                {"addPlaintextHeaders": {"authorization": "x"}}
            ),
        )


async def test_no_provider_produces_the_inbound_token(server: TokenServer, clock: FakeClock) -> None:
    environ = {"CLIENT_SECRET": "s3cret", "K": "key", "T": "tok"}
    configs: list[dict[str, Any]] = [
        {"type": "headerInjection", "headerName": "X-Key", "valueSecretRef": {"env": "K"}},
        {"type": "bearerToken", "tokenSecretRef": {"env": "T"}},
        CLIENT_CREDENTIALS,
        TOKEN_EXCHANGE,
    ]
    for config in configs:
        headers = await build(config, server, clock, environ=environ).headers(INBOUND)
        assert headers
        assert all(INBOUND not in value for value in headers.values()), config["type"]
