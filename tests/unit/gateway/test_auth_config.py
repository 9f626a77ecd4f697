"""The auth config models refuse unsafe or ambiguous settings with messages naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from api.auth_config import (
    BearerTokenAuth,
    HeaderForwardConfig,
    OAuth2ClientCredentialsAuth,
    OIDCConfig,
    TokenExchangeAuth,
    parse_outbound_auth,
)

BASE = {"issuer": "https://issuer.example.com", "audience": "mcp"}


def test_defaults_and_camel_case_round_trip() -> None:
    config = OIDCConfig.model_validate({**BASE, "clockSkewSeconds": 10, "requiredScopes": ["mcp:tools"]})
    assert config.allowed_algorithms == ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512")
    assert config.clock_skew_seconds == 10
    dumped = config.model_dump(by_alias=True, exclude_none=True)
    assert dumped["requiredScopes"] == ("mcp:tools",)
    assert OIDCConfig.model_validate(dumped) == config
    assert OIDCConfig(issuer=BASE["issuer"], audience="mcp").clock_skew_seconds == 30


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"issuer": "http://issuer.example.com"}, "issuer must use https"),
        ({"jwksUrl": "http://issuer.example.com/jwks"}, "jwksUrl must use https"),
        ({"issuer": "https://user:pw@issuer.example.com"}, "must not carry credentials"),
        ({"allowedAlgorithms": ["none"]}, "must not contain 'none'"),
        ({"allowedAlgorithms": ["RS256", "HS256"]}, "no sharedSecret is configured"),
        ({"allowedAlgorithms": ["XS999"]}, "unknown algorithm"),
        ({"allowedAlgorithms": []}, "at least one algorithm"),
        ({"sharedSecret": {"env": "S"}}, "no HS\\* algorithm"),
        ({"clockSkewSeconds": 3600}, "clockSkewSeconds"),
        ({"issuerr": "typo"}, "issuerr"),
    ],
)
def test_oidc_refusals(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        OIDCConfig.model_validate({**BASE, **extra})


@pytest.mark.parametrize(
    "issuer", ["http://127.0.0.1:8080", "http://localhost:9000/realms/x", "http://[::1]:1"]
)
def test_loopback_http_issuer_is_allowed(issuer: str) -> None:
    assert OIDCConfig.model_validate({**BASE, "issuer": issuer}).issuer == issuer


def test_insecure_allow_http_permits_plain_http() -> None:
    config = OIDCConfig.model_validate(
        {**BASE, "issuer": "http://keycloak.auth.svc", "insecureAllowHttp": True}
    )
    assert config.insecure_allow_http


def test_outbound_union_by_type() -> None:
    assert isinstance(
        parse_outbound_auth({"type": "bearerToken", "tokenSecretRef": {"env": "T"}}), BearerTokenAuth
    )
    cc = parse_outbound_auth(
        {
            "type": "oauth2ClientCredentials",
            "tokenUrl": "https://auth.example.com/token",
            "clientId": "c",
            "clientSecretRef": {"file": "/var/run/secrets/client/secret"},
        }
    )
    assert isinstance(cc, OAuth2ClientCredentialsAuth)
    te = parse_outbound_auth({"type": "tokenExchange", "tokenUrl": "https://sts.example.com/token"})
    assert isinstance(te, TokenExchangeAuth)
    assert te.subject_token_type == "urn:ietf:params:oauth:token-type:access_token"
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        parse_outbound_auth({"type": "basic"})


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ({"value": "hunter2"}, "Extra inputs are not permitted"),
        ({}, "exactly one of env"),
        ({"env": "A", "file": "/a"}, "exactly one of env"),
        ({"env": "1BAD"}, "not a valid environment variable name"),
        ({"file": "relative/path"}, "must be an absolute path"),
    ],
)
def test_secret_refs_never_hold_values(ref: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_outbound_auth({"type": "bearerToken", "tokenSecretRef": ref})


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"type": "headerInjection", "headerName": "Bad Header", "valueSecretRef": {"env": "V"}},
            "header name",
        ),
        (
            {"type": "headerInjection", "headerName": "Host", "valueSecretRef": {"env": "V"}},
            "computed by the",
        ),
        (
            {"type": "oauth2ClientCredentials", "tokenUrl": "http://auth.example.com/t", "clientId": "c"},
            "clientSecretRef",
        ),
        (
            {
                "type": "oauth2ClientCredentials",
                "tokenUrl": "http://auth.example.com/t",
                "clientId": "c",
                "clientSecretRef": {"env": "S"},
            },
            "tokenUrl must use https",
        ),
        (
            {"type": "tokenExchange", "tokenUrl": "https://sts.example.com", "clientSecretRef": {"env": "S"}},
            "clientId is missing",
        ),
    ],
)
def test_outbound_refusals(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_outbound_auth(config)


def test_header_forward_refuses_duplicates_and_line_breaks() -> None:
    with pytest.raises(ValidationError, match="configured twice"):
        HeaderForwardConfig.model_validate(
            {
                "addPlaintextHeaders": {"X-Tenant": "a"},
                "addHeadersFromSecret": [{"headerName": "x-tenant", "valueSecretRef": {"env": "T"}}],
            }
        )
    with pytest.raises(ValidationError, match="line breaks"):
        HeaderForwardConfig.model_validate({"addPlaintextHeaders": {"X-A": "a\r\nX-Injected: 1"}})
