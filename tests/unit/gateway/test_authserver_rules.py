"""The embedded authorization server's code and token rules, through its real endpoints (the SDK's
handlers and our provider) with memory storage, a fake clock and a stand-in upstream identity provider."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from api.authserver_config import AuthServerConfig
from gateway.authserver.keys import HmacKeys, SigningKeys
from gateway.authserver.provider import AuthServerProvider
from gateway.authserver.routes import authserver_routes
from gateway.authserver.store import MemoryAuthStore
from gateway.authserver.upstream import UpstreamTokens, pkce_challenge
from gateway.ratelimit.buckets import MemoryBuckets

ISSUER = "https://mcp.example.com"
RESOURCE = f"{ISSUER}/mcp"
REDIRECT = "http://127.0.0.1:9/cb"
VERIFIER = "v" * 64


@dataclass
class Clock:
    now: float = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class StandInUpstream:
    """Signs everyone in as ``alice`` with a fixed upstream token; records refreshes."""

    refreshed: list[str] = field(default_factory=list)

    async def authorization_url(self, *, state: str, verifier: str, nonce: str) -> str:
        return f"https://idp.example.com/authorize?state={state}&code_challenge={pkce_challenge(verifier)}"

    async def exchange(self, code: str, verifier: str) -> UpstreamTokens:
        return UpstreamTokens(f"upstream-at-{code}", "upstream-rt", time.time() + 3600)

    async def subject(self, tokens: UpstreamTokens, nonce: str) -> str:
        return "alice"

    async def refresh(self, refresh_token: str) -> UpstreamTokens:
        self.refreshed.append(refresh_token)
        return UpstreamTokens("upstream-at-refreshed", refresh_token, time.time() + 3600)

    async def aclose(self) -> None:
        return None


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock(time.time())  # PyJWT checks iat against the real clock
    monkeypatch.setattr(time, "time", fake)
    return fake


def make_provider(clock: Clock, **settings: Any) -> AuthServerProvider:
    config = AuthServerConfig.model_validate(
        {"issuer": ISSUER, "upstream": {"issuerUrl": "https://idp.example.com", "clientId": "p"}, **settings}
    )
    return AuthServerProvider(
        config,
        resource_url=RESOURCE,
        store=MemoryAuthStore(clock=clock),
        keys=SigningKeys.load(()),
        hmac_keys=HmacKeys.load(()),
        upstream=StandInUpstream(),  # type: ignore[arg-type]
    )


@pytest.fixture
def server(clock: Clock) -> Iterator[tuple[TestClient, AuthServerProvider]]:
    provider = make_provider(clock)
    with TestClient(Starlette(routes=authserver_routes(provider)), base_url=ISSUER) as client:
        yield client, provider


def register(client: TestClient) -> str:
    response = client.post("/oauth/register", json={"redirect_uris": [REDIRECT]})
    assert response.status_code == 201, response.text
    assert response.json()["token_endpoint_auth_method"] == "none" and "client_secret" not in response.json()
    return str(response.json()["client_id"])


def query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def authorize_params(client_id: str, **extra: str) -> dict[str, str]:
    """An authorization request with PKCE (S256) for the registered redirect URI."""
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "code_challenge": pkce_challenge(VERIFIER),
        "code_challenge_method": "S256",
        "state": "client-state",
        **extra,
    }


def sign_in(client: TestClient, client_id: str, **extra: str) -> dict[str, str]:
    """Authorize, let the stand-in upstream call back; the query the client's redirect URI receives."""
    params = authorize_params(client_id, **extra)
    to_upstream = client.get("/oauth/authorize", params=params, follow_redirects=False)
    assert to_upstream.status_code == 302, to_upstream.text
    assert to_upstream.headers["location"].startswith("https://idp.example.com/authorize?")
    state = query(to_upstream.headers["location"])["state"]
    back = client.get("/oauth/callback", params={"code": "up1", "state": state}, follow_redirects=False)
    assert back.status_code == 302, back.text
    return query(back.headers["location"])


def token(client: TestClient, **form: str) -> Any:
    return client.post("/oauth/token", data=form)


def redeem(client: TestClient, client_id: str, code: str, **overrides: str) -> Any:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": client_id,
        "code_verifier": VERIFIER,
        **overrides,
    }
    return token(client, **form)


def test_a_code_is_redeemed_once_for_a_jwt_and_a_refresh_token(server: tuple[TestClient, Any]) -> None:
    client, provider = server
    client_id = register(client)
    back = sign_in(client, client_id)
    assert back["state"] == "client-state"
    issued = redeem(client, client_id, back["code"])
    assert issued.status_code == 200, issued.text
    body = issued.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600 and body["refresh_token"]
    claims = provider.keys.verify(body["access_token"], issuer=ISSUER, audience=RESOURCE, leeway=0)
    assert claims["sub"] == "alice" and claims["client_id"] == client_id
    reused = redeem(client, client_id, back["code"])
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"


def test_a_wrong_verifier_or_redirect_uri_is_refused(server: tuple[TestClient, Any]) -> None:
    client, _ = server
    client_id = register(client)
    code = sign_in(client, client_id)["code"]
    wrong_verifier = redeem(client, client_id, code, code_verifier="w" * 64)
    assert wrong_verifier.status_code == 400 and wrong_verifier.json()["error"] == "invalid_grant"
    wrong_redirect = redeem(client, client_id, code, redirect_uri="http://127.0.0.1:9/other")
    assert wrong_redirect.status_code == 400 and wrong_redirect.json()["error"] == "invalid_request"
    another_client = redeem(client, register(client), code)
    assert another_client.status_code == 400 and another_client.json()["error"] == "invalid_grant"
    assert redeem(client, client_id, code).status_code == 200  # the failures did not use the code up


def test_a_code_expires_after_ten_minutes(server: tuple[TestClient, Any], clock: Clock) -> None:
    client, _ = server
    client_id = register(client)
    code = sign_in(client, client_id)["code"]
    clock.now += 601
    expired = redeem(client, client_id, code)
    assert expired.status_code == 400 and expired.json()["error"] == "invalid_grant"


def test_refresh_tokens_rotate_and_the_old_one_stops_working(server: tuple[TestClient, Any]) -> None:
    client, _ = server
    client_id = register(client)
    first = redeem(client, client_id, sign_in(client, client_id)["code"]).json()
    refresh = {"grant_type": "refresh_token", "client_id": client_id}
    second = token(client, **refresh, refresh_token=first["refresh_token"])
    assert second.status_code == 200, second.text
    assert second.json()["refresh_token"] != first["refresh_token"]
    replayed = token(client, **refresh, refresh_token=first["refresh_token"])
    assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_grant"
    assert token(client, **refresh, refresh_token=second.json()["refresh_token"]).status_code == 200


def test_refresh_tokens_expire_after_seven_days(server: tuple[TestClient, Any], clock: Clock) -> None:
    client, _ = server
    client_id = register(client)
    first = redeem(client, client_id, sign_in(client, client_id)["code"]).json()
    clock.now += 7 * 24 * 3600 + 1
    late = token(
        client, grant_type="refresh_token", client_id=client_id, refresh_token=first["refresh_token"]
    )
    assert late.status_code == 400 and late.json()["error"] == "invalid_grant"


def test_callbacks_without_a_pending_sign_in_or_with_an_upstream_error(
    server: tuple[TestClient, Any],
) -> None:
    client, _ = server
    unknown = client.get("/oauth/callback", params={"code": "x", "state": "forged"}, follow_redirects=False)
    assert unknown.status_code == 400
    client_id = register(client)
    params = authorize_params(client_id, state="s1")
    location = client.get("/oauth/authorize", params=params, follow_redirects=False).headers["location"]
    state = query(location)["state"]
    denied = client.get(
        "/oauth/callback", params={"error": "access_denied", "state": state}, follow_redirects=False
    )
    assert denied.status_code == 302
    assert query(denied.headers["location"]) | {"error_description": ""} == {
        "error": "access_denied",
        "state": "s1",
        "error_description": "",
    }
    replay = client.get("/oauth/callback", params={"code": "x", "state": state}, follow_redirects=False)
    assert replay.status_code == 400  # a sign-in completes once


def test_a_token_for_another_resource_is_not_issued(server: tuple[TestClient, Any]) -> None:
    client, _ = server
    client_id = register(client)
    params = authorize_params(client_id, resource="https://other.example.com/mcp")
    refused = client.get("/oauth/authorize", params=params, follow_redirects=False)
    assert refused.status_code == 302 and query(refused.headers["location"])["error"] == "invalid_target"


def test_confidential_clients_register_only_when_allowed(clock: Clock) -> None:
    body = {
        "redirect_uris": ["https://app.example.com/cb"],
        "token_endpoint_auth_method": "client_secret_basic",
    }
    for allowed, status in ((False, 400), (True, 201)):
        provider = make_provider(clock, allowConfidentialClientRegistration=allowed)
        with TestClient(Starlette(routes=authserver_routes(provider)), base_url=ISSUER) as client:
            response = client.post("/oauth/register", json=body)
            assert response.status_code == status, response.text
            assert ("client_secret" in response.json()) is allowed


def test_registration_is_rate_limited_as_in_toolhive(clock: Clock) -> None:
    routes = authserver_routes(make_provider(clock), buckets=MemoryBuckets(clock=clock))
    with TestClient(Starlette(routes=routes), base_url=ISSUER) as client:
        for _ in range(5):
            register(client)
        refused = client.post("/oauth/register", json={"redirect_uris": [REDIRECT]})
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        clock.now += 1.0
        register(client)


def test_an_expiring_upstream_token_is_refreshed_with_the_upstream_refresh_token(
    server: tuple[TestClient, AuthServerProvider], clock: Clock
) -> None:
    client, provider = server
    client_id = register(client)
    issued = redeem(client, client_id, sign_in(client, client_id)["code"]).json()
    session = provider.keys.verify(issued["access_token"], issuer=ISSUER, audience=RESOURCE, leeway=0)["tsid"]
    assert asyncio.run(provider.upstream_token(session)) == "upstream-at-up1"
    clock.now += 3600 - 10  # within the refresh margin of the upstream token's expiry
    assert asyncio.run(provider.upstream_token(session)) == "upstream-at-refreshed"
    assert provider.upstream.refreshed == ["upstream-rt"]  # type: ignore[attr-defined]
    assert asyncio.run(provider.upstream_token("unknown-sign-in")) is None
