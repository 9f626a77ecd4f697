"""MCPExternalAuthConfig ``type: embeddedAuthServer``: the proxy as the OAuth 2.1 authorization server of
its MCP endpoint, signing users in at one upstream identity provider (docs/auth.md).

Field names are ToolHive's (``EmbeddedAuthServerConfig``). Its fields this API does not implement are
refused naming the field: those on objects through :mod:`api.reserved`, those inside list items
(``upstreamProviders[]``) declared here as free-form and refused by the rules
(:data:`UNSUPPORTED_UPSTREAM_FIELDS`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from pydantic.alias_generators import to_snake

from api.base import CRDModel
from api.common import SecretKeyRef
from api.problems import Problem

__all__ = [
    "ISSUER_PATTERN",
    "UNSUPPORTED_UPSTREAM_FIELDS",
    "AuthServerRef",
    "AuthServerStorageConfig",
    "EmbeddedAuthServerConfig",
    "OAuth2UpstreamConfig",
    "OIDCUpstreamConfig",
    "RedisACLUserConfig",
    "RedisSentinelConfig",
    "RedisStorageConfig",
    "RedisTLSConfig",
    "SentinelServiceRef",
    "TokenLifespanConfig",
    "UpstreamProviderConfig",
    "embedded_auth_problems",
]

ISSUER_PATTERN = r"^https?://[^\s?#]+[^/\s?#]$"
"""ToolHive's issuer rule: absolute http(s), no query, fragment or trailing slash (RFC 8414)."""
GO_DURATION = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"
_DNS_LABEL = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"

FreeForm = dict[str, Any]

#: Fields of ToolHive's upstream providers this API refuses: (block, field, ToolHive's meaning).
UNSUPPORTED_UPSTREAM_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("oidcConfig", "userInfoOverride", "a custom UserInfo endpoint and claim mapping"),
    ("oauth2Config", "userInfo", "a UserInfo endpoint naming the user"),
    ("oauth2Config", "tokenResponseMapping", "a custom token response shape"),
    ("oauth2Config", "identityFromToken", "the user's identity read from the token response"),
    ("oauth2Config", "dcrConfig", "dynamic client registration at the upstream"),
)


class TokenLifespanConfig(CRDModel):
    """How long issued credentials are valid (Go durations)."""

    access_token_lifespan: str | None = Field(default=None, pattern=GO_DURATION)
    """Access tokens (JWTs); default ``1h``."""
    refresh_token_lifespan: str | None = Field(default=None, pattern=GO_DURATION)
    """Refresh tokens; default ``168h`` (7 days)."""
    auth_code_lifespan: str | None = Field(default=None, pattern=GO_DURATION)
    """Authorization codes; default ``10m``."""


class OIDCUpstreamConfig(CRDModel):
    """An OIDC identity provider, its endpoints discovered from ``issuerUrl``."""

    issuer_url: str = Field(pattern=r"^https://.*$")
    """The provider's issuer (``/.well-known/openid-configuration`` is read below it)."""
    client_id: str = Field(min_length=1)
    """The client registered at the provider for this proxy."""
    client_secret_ref: SecretKeyRef | None = None
    """The client's secret; none for a public client (PKCE only)."""
    redirect_uri: str | None = None
    """The callback the provider redirects to; default ``<issuer>/oauth/callback``."""
    scopes: list[str] | None = None
    """Scopes asked of the provider; default ``openid offline_access``."""
    additional_authorization_params: dict[str, str] | None = Field(default=None, max_length=16)
    """Extra query parameters of the authorization request (not the ones the server sets)."""
    subject_claim: str | None = Field(default=None, max_length=128, pattern=r"^([a-zA-Z_][a-zA-Z0-9_]*)?$")
    """The ID-token claim naming the user; default ``sub``."""
    user_info_override: FreeForm | None = Field(
        default=None, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}
    )
    """Not supported yet (refused): ToolHive's custom UserInfo endpoint and claim mapping."""


class OAuth2UpstreamConfig(CRDModel):
    """A plain OAuth 2.0 provider with explicit endpoints; the user is a digest of the access token."""

    authorization_endpoint: str = Field(pattern=r"^https?://.*$")
    token_endpoint: str = Field(pattern=r"^https?://.*$")
    client_id: str | None = None
    """The client registered at the provider (required here: ``dcrConfig`` is not supported)."""
    client_secret_ref: SecretKeyRef | None = None
    redirect_uri: str | None = None
    scopes: list[str] | None = None
    additional_authorization_params: dict[str, str] | None = Field(default=None, max_length=16)
    insecure_allow_http: bool = Field(default=False, alias="insecureAllowHTTP")
    """Allow ``http://`` endpoints off loopback (a trusted in-cluster network only)."""
    allow_private_i_ps: bool = Field(default=False, alias="allowPrivateIPs")
    """Allow the endpoints' hosts to resolve to private addresses (an in-cluster provider)."""
    user_info: FreeForm | None = Field(
        default=None, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}
    )
    """Not supported yet (refused)."""
    token_response_mapping: FreeForm | None = Field(
        default=None, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}
    )
    """Not supported yet (refused)."""
    identity_from_token: FreeForm | None = Field(
        default=None, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}
    )
    """Not supported yet (refused)."""
    dcr_config: FreeForm | None = Field(
        default=None, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}
    )
    """Not supported yet (refused)."""


class UpstreamProviderConfig(CRDModel):
    """One upstream identity provider: ``type`` selects ``oidcConfig`` or ``oauth2Config``."""

    name: str = Field(min_length=1, max_length=63, pattern=_DNS_LABEL)
    type: Literal["oidc", "oauth2"]
    oidc_config: OIDCUpstreamConfig | None = None
    oauth2_config: OAuth2UpstreamConfig | None = Field(default=None, alias="oauth2Config")


class SentinelServiceRef(CRDModel):
    """A Service whose endpoints are the sentinels (the operator resolves them to addresses)."""

    name: str = Field(min_length=1)
    namespace: str | None = None
    """Default: the config's namespace."""
    port: int = Field(default=26379, ge=1, le=65535)


class RedisSentinelConfig(CRDModel):
    """Redis behind Sentinel: the master's name and where the sentinels are."""

    master_name: str = Field(min_length=1)
    sentinel_addrs: list[str] | None = None
    """``host:port`` of each sentinel (or ``sentinelService``)."""
    sentinel_service: SentinelServiceRef | None = None
    db: int = Field(default=0, ge=0, le=15)


class RedisACLUserConfig(CRDModel):
    """Redis credentials: an ACL user (Redis 6+) or only a password."""

    username_secret_ref: SecretKeyRef | None = None
    password_secret_ref: SecretKeyRef


class RedisTLSConfig(CRDModel):
    """TLS towards Redis (its presence enables it)."""

    ca_cert_secret_ref: SecretKeyRef | None = None
    """PEM CAs verifying the server; default: the system's."""


class RedisStorageConfig(CRDModel):
    """Redis holding the server's state: ``addr`` or ``sentinelConfig``."""

    addr: str | None = None
    sentinel_config: RedisSentinelConfig | None = None
    acl_user_config: RedisACLUserConfig
    dial_timeout: str | None = Field(default=None, pattern=GO_DURATION)
    read_timeout: str | None = Field(default=None, pattern=GO_DURATION)
    write_timeout: str | None = Field(default=None, pattern=GO_DURATION)
    tls: RedisTLSConfig | None = None


class AuthServerStorageConfig(CRDModel):
    """Where clients, codes, refresh tokens and upstream tokens live; default memory (one replica)."""

    type: Literal["memory", "redis"] = "memory"
    redis: RedisStorageConfig | None = None


class EmbeddedAuthServerConfig(CRDModel):
    """The embedded OAuth 2.1 authorization server (see the module docstring)."""

    issuer: str = Field(pattern=ISSUER_PATTERN)
    """``iss`` of issued tokens and the base of its endpoints (the proxy's external URL)."""
    authorization_endpoint_base_url: str | None = Field(default=None, pattern=ISSUER_PATTERN)
    """Advertise ``<this>/oauth/authorize`` instead of ``<issuer>/oauth/authorize``."""
    signing_key_secret_refs: list[SecretKeyRef] | None = Field(default=None, max_length=5)
    """PEM private keys signing the JWTs: the first signs, all verify. None: an ephemeral key."""
    hmac_secret_refs: list[SecretKeyRef] | None = None
    """Secrets (the first at least 32 bytes) keying codes and refresh tokens. None: an ephemeral one."""
    token_lifespans: TokenLifespanConfig | None = None
    upstream_providers: list[UpstreamProviderConfig] = Field(min_length=1)
    """The identity provider users sign in at (one on MCPServer and MCPRemoteProxy)."""
    storage: AuthServerStorageConfig | None = None
    disable_upstream_token_injection: bool = False
    """Send the backend no credential instead of the user's upstream access token."""
    insecure_allow_http: bool = Field(default=False, alias="insecureAllowHTTP")
    """Allow an ``http://`` issuer off loopback (a trusted in-cluster network only)."""
    allow_confidential_client_registration: bool = False
    """Register confidential clients by DCR too (not with ``insecureAllowHTTP``)."""
    insecure_allow_confidential_over_loopback_http: bool = Field(
        default=False, alias="insecureAllowConfidentialOverLoopbackHTTP"
    )
    baseline_client_scopes: list[str] | None = Field(default=None, max_length=10)
    """Scopes every registered client may request."""


class AuthServerRef(CRDModel):
    """The MCPExternalAuthConfig (``type: embeddedAuthServer``) whose server the proxy runs."""

    kind: Literal["MCPExternalAuthConfig"] = "MCPExternalAuthConfig"
    name: str = Field(min_length=1)


def _unsupported(path: str, meaning: str) -> Problem:
    return Problem(path, f"is not supported yet; remove it (ToolHive: {meaning})")


def _upstream_problems(upstream: UpstreamProviderConfig, at: str) -> list[Problem]:
    problems = []
    blocks = {"oidc": upstream.oidc_config, "oauth2": upstream.oauth2_config}
    if blocks[upstream.type] is None or any(v is not None for k, v in blocks.items() if k != upstream.type):
        problems.append(
            Problem(
                f"{at}.type",
                "type must be 'oidc' or 'oauth2'; oidcConfig must be set when type is 'oidc' and "
                "oauth2Config when type is 'oauth2' (and the other must not be set)",
            )
        )
    for block, name, meaning in UNSUPPORTED_UPSTREAM_FIELDS:
        config = upstream.oidc_config if block == "oidcConfig" else upstream.oauth2_config
        if config is not None and getattr(config, to_snake(name)) is not None:
            problems.append(_unsupported(f"{at}.{block}.{name}", meaning))
    oauth2 = upstream.oauth2_config
    if oauth2 is not None and not oauth2.client_id:
        problems.append(Problem(f"{at}.oauth2Config.clientId", "set clientId (dcrConfig is not supported)"))
    return problems


def _storage_problems(storage: AuthServerStorageConfig | None, at: str) -> list[Problem]:
    if storage is None:
        return []
    if storage.type == "redis" and storage.redis is None:
        return [Problem(f"{at}.redis", "storage type is redis; set the redis block")]
    redis = storage.redis
    if redis is None:
        return []
    if storage.type != "redis":
        return [Problem(f"{at}.redis", "is ignored with storage type memory; remove it or set type: redis")]
    if (redis.addr is None) == (redis.sentinel_config is None):
        return [Problem(f"{at}.redis", "set exactly one of addr or sentinelConfig")]
    sentinel = redis.sentinel_config
    if sentinel is not None and bool(sentinel.sentinel_addrs) == (sentinel.sentinel_service is not None):
        return [Problem(f"{at}.redis.sentinelConfig", "set exactly one of sentinelAddrs or sentinelService")]
    return []


def embedded_auth_problems(config: EmbeddedAuthServerConfig) -> list[Problem]:
    """ToolHive's admission and reconcile rules of an ``embeddedAuthServer`` block, and this API's limits."""
    at = "spec.embeddedAuthServer"
    problems = []
    if config.allow_confidential_client_registration and config.insecure_allow_http:
        problems.append(
            Problem(
                f"{at}.allowConfidentialClientRegistration",
                "cannot be combined with insecureAllowHTTP; client secrets would be issued in cleartext over "
                "an unauthenticated endpoint",
            )
        )
    names = [u.name for u in config.upstream_providers]
    if len(names) > 1:
        problems.append(
            Problem(
                f"{at}.upstreamProviders",
                "MCPServer and MCPRemoteProxy sign users in at one upstream provider; keep one entry",
            )
        )
    for index, upstream in enumerate(config.upstream_providers):
        problems += _upstream_problems(upstream, f"{at}.upstreamProviders[{index}]")
    return problems + _storage_problems(config.storage, f"{at}.storage")
