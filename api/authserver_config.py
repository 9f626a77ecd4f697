"""The proxy's embedded OAuth 2.1 authorization server (``authServer`` in the proxy config file).

With ``authServer`` the proxy is the authorization server of its own MCP endpoint: MCP clients discover
it, register by RFC 7591, sign in at the upstream identity provider through it and receive its JWTs
(docs/auth.md, "Embedded authorization server"). Keys follow ToolHive's ``embeddedAuthServer``; the
file never holds a secret value: signing keys, HMAC secrets, the upstream client secret and the Redis
credentials are :class:`api.auth_config.SecretValueSource` references.

Shape::

    "authServer": {
      "issuer": "https://mcp.example.com",
      "signingKeys": [{"file": "/etc/mcp-operator/auth/signing-0/tls.key"}],
      "hmacSecrets": [{"env": "AUTH_HMAC_0"}],
      "tokenLifespans": {"accessTokenLifespan": "1h", "refreshTokenLifespan": "168h",
                         "authCodeLifespan": "10m"},
      "upstream": {"name": "okta", "type": "oidc", "issuerUrl": "https://example.okta.com",
                   "clientId": "abc", "clientSecretRef": {"env": "AUTH_UPSTREAM_SECRET"},
                   "scopes": ["openid", "offline_access"]},
      "storage": {"type": "redis", "redis": {"address": "redis.ns.svc:6379", "passwordRef": {...}}},
      "disableUpstreamTokenInjection": false
    }
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from api.auth_config import SecretValueSource, check_url, is_loopback_url
from api.config_model import ConfigFileModel
from api.durations import Duration
from api.scaling_config import split_address

__all__ = [
    "DEFAULT_ACCESS_TOKEN_SECONDS",
    "DEFAULT_AUTH_CODE_SECONDS",
    "DEFAULT_REFRESH_TOKEN_SECONDS",
    "RESERVED_AUTHORIZATION_PARAMS",
    "AuthServerConfig",
    "AuthStorageConfig",
    "RedisStorageConfig",
    "TokenLifespans",
    "UpstreamConfig",
]

DEFAULT_ACCESS_TOKEN_SECONDS = 3600.0
"""ToolHive's access-token lifespan: 1 hour."""
DEFAULT_REFRESH_TOKEN_SECONDS = 7 * 24 * 3600.0
"""ToolHive's refresh-token lifespan: 7 days."""
DEFAULT_AUTH_CODE_SECONDS = 600.0
"""ToolHive's authorization-code lifespan: 10 minutes."""

RESERVED_AUTHORIZATION_PARAMS = frozenset(
    {
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
        "nonce",
    }
)
"""Parameters of the upstream authorization request the server sets itself."""

_SUBJECT_CLAIM = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")


def check_issuer(field: str, url: str, *, insecure_allow_http: bool) -> str:
    """An issuer identifier as RFC 8414 wants it: absolute, no query, fragment or trailing slash."""
    parts = urlsplit(url)
    if parts.query or parts.fragment or url.endswith("/"):
        raise ValueError(f"{field} {url!r} must have no query, fragment or trailing slash (RFC 8414)")
    return check_url(field, url, insecure_allow_http=insecure_allow_http)


class _Model(ConfigFileModel):
    """This file's models."""


class TokenLifespans(_Model):
    """How long issued credentials stay valid (ToolHive's ``tokenLifespans``)."""

    access_token_lifespan: Duration = Field(default=DEFAULT_ACCESS_TOKEN_SECONDS, gt=0)
    refresh_token_lifespan: Duration = Field(default=DEFAULT_REFRESH_TOKEN_SECONDS, gt=0)
    auth_code_lifespan: Duration = Field(default=DEFAULT_AUTH_CODE_SECONDS, gt=0)


class UpstreamConfig(_Model):
    """The identity provider users sign in at: OIDC (discovered from ``issuerUrl``) or plain OAuth 2.0."""

    name: str = Field(default="default", pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$", max_length=63)
    type: Literal["oidc", "oauth2"] = "oidc"
    issuer_url: str | None = None
    """``oidc``: the issuer whose ``/.well-known/openid-configuration`` names the endpoints."""
    authorization_endpoint: str | None = None
    """``oauth2``: where the browser is sent to sign in."""
    token_endpoint: str | None = None
    """``oauth2``: where the upstream code is exchanged."""
    client_id: str = Field(min_length=1)
    client_secret_ref: SecretValueSource | None = None
    """None: a public client (PKCE only)."""
    redirect_uri: str | None = None
    """The callback the upstream redirects to; default ``<issuer>/oauth/callback``."""
    scopes: tuple[str, ...] | None = None
    """Default ``openid offline_access`` (``oidc``); none (``oauth2``)."""
    additional_authorization_params: dict[str, str] = Field(default_factory=dict, max_length=16)
    subject_claim: str = "sub"
    """The ID-token claim naming the user (``oidc``)."""
    allow_private_endpoint: bool = False
    """Let the upstream's host resolve to a private or loopback address (an in-cluster IdP)."""
    insecure_allow_http: bool = False

    @field_validator("subject_claim")
    @classmethod
    def _claim(cls, value: str) -> str:
        if not _SUBJECT_CLAIM.match(value):
            raise ValueError(f"subjectClaim {value!r} must be a claim name (letters, digits, underscores)")
        return value

    @field_validator("additional_authorization_params")
    @classmethod
    def _params(cls, value: dict[str, str]) -> dict[str, str]:
        reserved = sorted(set(value) & RESERVED_AUTHORIZATION_PARAMS)
        if reserved:
            raise ValueError(
                f"additionalAuthorizationParams must not set {reserved}: the server sets them itself"
            )
        return value

    @model_validator(mode="after")
    def _endpoints(self) -> UpstreamConfig:
        http = self.insecure_allow_http
        if self.type == "oidc":
            if self.issuer_url is None or self.authorization_endpoint or self.token_endpoint:
                raise ValueError(
                    "upstream type 'oidc' needs issuerUrl (its endpoints are discovered) and no "
                    "authorizationEndpoint / tokenEndpoint"
                )
            check_issuer("upstream.issuerUrl", self.issuer_url, insecure_allow_http=http)
        else:
            if self.authorization_endpoint is None or self.token_endpoint is None or self.issuer_url:
                raise ValueError(
                    "upstream type 'oauth2' needs authorizationEndpoint and tokenEndpoint, and no issuerUrl"
                )
            check_url("upstream.authorizationEndpoint", self.authorization_endpoint, insecure_allow_http=http)
            check_url("upstream.tokenEndpoint", self.token_endpoint, insecure_allow_http=http)
        if self.redirect_uri is not None:
            check_url("upstream.redirectUri", self.redirect_uri, insecure_allow_http=http)
        return self

    @property
    def requested_scopes(self) -> tuple[str, ...]:
        if self.scopes is not None:
            return self.scopes
        return ("openid", "offline_access") if self.type == "oidc" else ()


class RedisStorageConfig(_Model):
    """Redis holding clients, codes, refresh tokens and upstream tokens: one address, or Sentinel."""

    address: str | None = None
    """``host:port`` of Redis."""
    sentinel_master: str | None = None
    """Sentinel: the monitored master's name (with ``sentinelAddresses``)."""
    sentinel_addresses: tuple[str, ...] = ()
    """Sentinel: ``host:port`` of each sentinel (the operator resolves ToolHive's sentinel Service)."""
    db: int = Field(default=0, ge=0, le=15)
    key_prefix: str = "mcp-auth:"
    username_ref: SecretValueSource | None = None
    """The ACL user (Redis 6+); none: the default user."""
    password_ref: SecretValueSource | None = None
    tls: bool = False
    ca_cert_ref: SecretValueSource | None = None
    """PEM CAs verifying the server's certificate (``tls``); none: the system's."""
    timeout: Duration = 1.0

    @field_validator("address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None:
            split_address(value)
        return value

    @field_validator("sentinel_addresses")
    @classmethod
    def _sentinels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for address in value:
            split_address(address)
        return value

    @model_validator(mode="after")
    def _one_way(self) -> RedisStorageConfig:
        sentinel = self.sentinel_master is not None or bool(self.sentinel_addresses)
        if sentinel == (self.address is not None):
            raise ValueError(
                "storage.redis needs exactly one of address or sentinelMaster + sentinelAddresses"
            )
        if sentinel and (self.sentinel_master is None or not self.sentinel_addresses):
            raise ValueError("storage.redis Sentinel needs both sentinelMaster and sentinelAddresses")
        return self


class AuthStorageConfig(_Model):
    """Where the server's state lives: this process's memory (lost on restart) or Redis (shared)."""

    type: Literal["memory", "redis"] = "memory"
    redis: RedisStorageConfig | None = None

    @model_validator(mode="after")
    def _redis(self) -> AuthStorageConfig:
        if (self.type == "redis") != (self.redis is not None):
            raise ValueError(
                "storage.type 'redis' needs storage.redis (and storage.redis needs type 'redis')"
            )
        return self


class AuthServerConfig(_Model):
    """The embedded authorization server (see the module docstring)."""

    issuer: str
    """``iss`` of issued tokens and the base of every endpoint."""
    authorization_endpoint_base_url: str | None = None
    """Advertise ``<this>/oauth/authorize`` instead of ``<issuer>/oauth/authorize`` (browser-facing host)."""
    resource_url: str | None = None
    """The ``aud`` of issued tokens (this MCP endpoint's URL); default: the proxy's resource URL."""
    signing_keys: tuple[SecretValueSource, ...] = Field(default=(), max_length=5)
    """PEM private keys (RSA or EC P-256/384/521); the first signs, all verify. None: an ephemeral key."""
    hmac_secrets: tuple[SecretValueSource, ...] = ()
    """Secrets keying the storage of opaque codes and refresh tokens (first current, all looked up)."""
    token_lifespans: TokenLifespans = Field(default_factory=TokenLifespans)
    upstream: UpstreamConfig
    storage: AuthStorageConfig = Field(default_factory=AuthStorageConfig)
    disable_upstream_token_injection: bool = False
    """Send the backend no credential (the client's is removed) instead of the upstream access token."""
    insecure_allow_http: bool = False
    """Allow an ``http://`` issuer on a non-loopback host (a trusted in-cluster network only)."""
    allow_confidential_client_registration: bool = False
    """Register confidential clients (``client_secret_basic`` / ``_post``) by DCR, not only public ones."""
    insecure_allow_confidential_over_loopback_http: bool = False
    """Allow confidential registration with an ``http://`` loopback issuer (local development)."""
    baseline_client_scopes: tuple[str, ...] = Field(default=(), max_length=10)
    """Scopes every registered client may request, whatever it registered."""

    @model_validator(mode="after")
    def _urls(self) -> AuthServerConfig:
        http = self.insecure_allow_http
        check_issuer("authServer.issuer", self.issuer, insecure_allow_http=http)
        if self.authorization_endpoint_base_url is not None:
            check_issuer(
                "authServer.authorizationEndpointBaseUrl",
                self.authorization_endpoint_base_url,
                insecure_allow_http=http,
            )
        if self.allow_confidential_client_registration and self.issuer.startswith("http://"):
            loopback_allowed = (
                is_loopback_url(self.issuer) and self.insecure_allow_confidential_over_loopback_http
            )
            if http or not loopback_allowed:
                raise ValueError(
                    "allowConfidentialClientRegistration needs an https issuer (client secrets would be "
                    "issued in cleartext); for a loopback http issuer set "
                    "insecureAllowConfidentialOverLoopbackHttp"
                )
        return self

    @property
    def callback_url(self) -> str:
        return self.upstream.redirect_uri or f"{self.issuer}/oauth/callback"
