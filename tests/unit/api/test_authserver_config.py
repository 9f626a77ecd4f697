"""``authServer`` in the proxy config: defaults as ToolHive's, and bad input refused naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from api.authserver_config import AuthServerConfig
from api.proxy_config import ProxyConfig

UPSTREAM = {"issuerUrl": "https://idp.example.com", "clientId": "proxy"}


def server(**fields: Any) -> dict[str, Any]:
    return {"issuer": "https://mcp.example.com", "upstream": UPSTREAM, **fields}


def test_defaults_follow_toolhive() -> None:
    config = AuthServerConfig.model_validate(server())
    lifespans = config.token_lifespans
    assert (
        lifespans.access_token_lifespan,
        lifespans.refresh_token_lifespan,
        lifespans.auth_code_lifespan,
    ) == (
        3600,
        7 * 24 * 3600,
        600,
    )
    assert config.upstream.requested_scopes == ("openid", "offline_access")
    assert config.storage.type == "memory"
    assert config.callback_url == "https://mcp.example.com/oauth/callback"
    custom = AuthServerConfig.model_validate(server(tokenLifespans={"accessTokenLifespan": "30m"}))
    assert custom.token_lifespans.access_token_lifespan == 1800


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"issuer": "https://mcp.example.com/"}, "trailing slash"),
        ({"issuer": "http://mcp.example.com"}, "must use https"),
        (
            {
                "issuer": "http://mcp.svc",
                "insecureAllowHttp": True,
                "allowConfidentialClientRegistration": True,
            },
            "allowConfidentialClientRegistration needs an https issuer",
        ),
        (
            {"issuer": "http://127.0.0.1:8080", "allowConfidentialClientRegistration": True},
            "insecureAllowConfidentialOverLoopbackHttp",
        ),
        (
            {"upstream": {**UPSTREAM, "additionalAuthorizationParams": {"state": "x"}}},
            "must not set ['state']",
        ),
        ({"upstream": {"type": "oidc", "clientId": "p"}}, "needs issuerUrl"),
        (
            {"upstream": {"type": "oauth2", "clientId": "p", "tokenEndpoint": "https://t"}},
            "authorizationEndpoint",
        ),
        ({"upstream": {**UPSTREAM, "subjectClaim": "a.b"}}, "subjectClaim"),
        ({"storage": {"type": "redis"}}, "storage.type 'redis' needs storage.redis"),
        (
            {"storage": {"type": "redis", "redis": {"address": "r:6379", "sentinelMaster": "m"}}},
            "exactly one of address or sentinelMaster",
        ),
        (
            {"storage": {"type": "redis", "redis": {"sentinelMaster": "m"}}},
            "both sentinelMaster and sentinelAddresses",
        ),
        ({"signingKeys": [{"env": "K"}] * 6}, "signingKeys"),
        ({"unknownField": 1}, "unknownField"),
    ],
)
def test_bad_input_is_refused_naming_the_field(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as raised:
        AuthServerConfig.model_validate(server(**fields))
    assert message in str(raised.value)


def test_the_proxy_takes_one_inbound_authentication_and_one_backend_credential() -> None:
    backend = {"type": "http", "url": "http://backend:8080/mcp"}
    with pytest.raises(ValidationError, match="remove oidc"):
        ProxyConfig.model_validate(
            {"backend": backend, "authServer": server(), "oidc": {"issuer": "https://i", "audience": "a"}}
        )
    bearer = {"type": "bearerToken", "tokenSecretRef": {"env": "T"}}
    with pytest.raises(ValidationError, match="disableUpstreamTokenInjection"):
        ProxyConfig.model_validate({"backend": {**backend, "auth": bearer}, "authServer": server()})
    static = ProxyConfig.model_validate(
        {"backend": {**backend, "auth": bearer}, "authServer": server(disableUpstreamTokenInjection=True)}
    )
    assert static.auth_server is not None and static.auth_server.disable_upstream_token_injection
    exchange = {"type": "tokenExchange", "tokenUrl": "https://sts.example.com/token"}
    exchanged = ProxyConfig.model_validate({"backend": {**backend, "auth": exchange}, "authServer": server()})
    assert exchanged.backend.auth is not None  # type: ignore[union-attr]  # the upstream token is exchanged
    with pytest.raises(ValidationError, match="withholds"):
        ProxyConfig.model_validate(
            {
                "backend": {**backend, "auth": exchange},
                "authServer": server(disableUpstreamTokenInjection=True),
            }
        )
