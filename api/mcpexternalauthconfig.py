"""MCPExternalAuthConfig: how a proxy or gateway authenticates to its backend."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from api.base import CRDModel
from api.common import HTTP_URL_PATTERN, SecretKeyRef
from api.embedded_auth import EmbeddedAuthServerConfig
from api.mcptoolconfig import ConfigStatus
from api.resource import CustomResource

__all__ = [
    "UNSUPPORTED_AUTH_TYPES",
    "BearerTokenConfig",
    "ExternalAuthType",
    "HeaderInjectionConfig",
    "MCPExternalAuthConfig",
    "MCPExternalAuthConfigSpec",
    "OAuth2ClientCredentialsConfig",
    "TokenExchangeConfig",
]

ExternalAuthType = Literal[
    "tokenExchange",
    "headerInjection",
    "bearerToken",
    "oauth2ClientCredentials",
    "unauthenticated",
    "embeddedAuthServer",
    "awsSts",
    "upstreamInject",
    "obo",
    "xaa",
]
#: ToolHive's types this API does not implement yet: accepted by the schema (never a bare 422), refused by
#: the operator with ``Accepted=False`` naming ``spec.type``, like every other field it does not implement.
UNSUPPORTED_AUTH_TYPES: dict[str, str] = {
    "awsSts": "AWS STS credentials for the backend",
    "upstreamInject": "tokens injected from an upstream identity provider",
    "obo": "on-behalf-of token exchange",
    "xaa": "cross-app access token exchange",
}


class TokenExchangeConfig(CRDModel):
    """RFC 8693 token exchange: trade the client's token for one the backend accepts."""

    token_url: str = Field(pattern=HTTP_URL_PATTERN)
    """Token endpoint of the authorization server."""
    client_id: str | None = None
    """Client id the proxy authenticates with."""
    client_secret_ref: SecretKeyRef | None = None
    """Secret key holding the client secret."""
    audience: str | None = None
    """Requested ``audience`` of the issued token."""
    scopes: list[str] | None = None
    """Requested scopes of the issued token."""
    subject_token_type: str | None = None
    """Type of the subject token (default ``urn:ietf:params:oauth:token-type:access_token``)."""
    external_token_header_name: str | None = Field(default=None, pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
    """Header carrying the exchanged token upstream (default ``Authorization: Bearer``)."""


class HeaderInjectionConfig(CRDModel):
    """A fixed header whose value comes from a Secret, e.g. an API key."""

    header_name: str = Field(min_length=1, max_length=255, pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
    """Name of the header."""
    value_secret_ref: SecretKeyRef
    """Secret key holding the header's value."""


class BearerTokenConfig(CRDModel):
    """A static bearer token from a Secret, sent as ``Authorization: Bearer <token>``."""

    token_secret_ref: SecretKeyRef
    """Secret key holding the token."""


class OAuth2ClientCredentialsConfig(CRDModel):
    """The OAuth 2.0 client credentials grant: the proxy gets its own token for the backend."""

    token_url: str = Field(pattern=HTTP_URL_PATTERN)
    """Token endpoint of the authorization server."""
    client_id: str = Field(min_length=1)
    """Client id."""
    client_secret_ref: SecretKeyRef
    """Secret key holding the client secret."""
    scopes: list[str] | None = None
    """Requested scopes."""
    audience: str | None = None
    """Requested audience."""


class MCPExternalAuthConfigSpec(CRDModel):
    """One way to authenticate to a backend: ``type`` selects which block applies."""

    type: ExternalAuthType
    """The mechanism; the block of the same name must be set and no other. ``embeddedAuthServer`` is
    referred to by a workload's ``spec.authServerRef``; the others by ``spec.externalAuthConfigRef``.
    ToolHive's ``awsSts``, ``upstreamInject``, ``obo`` and ``xaa`` are not supported yet and are refused."""
    token_exchange: TokenExchangeConfig | None = None
    """Settings for ``type: tokenExchange``."""
    header_injection: HeaderInjectionConfig | None = None
    """Settings for ``type: headerInjection``."""
    bearer_token: BearerTokenConfig | None = None
    """Settings for ``type: bearerToken``."""
    oauth2_client_credentials: OAuth2ClientCredentialsConfig | None = Field(
        default=None, alias="oauth2ClientCredentials"
    )
    """Settings for ``type: oauth2ClientCredentials``."""
    embedded_auth_server: EmbeddedAuthServerConfig | None = None
    """Settings for ``type: embeddedAuthServer``: the proxy as an OAuth 2.1 authorization server that signs
    users in at an upstream identity provider (docs/auth.md)."""


class MCPExternalAuthConfig(CustomResource):
    """How a proxy or gateway authenticates to its backend."""

    KIND: ClassVar[str] = "MCPExternalAuthConfig"

    kind: Literal["MCPExternalAuthConfig"] = "MCPExternalAuthConfig"
    """``MCPExternalAuthConfig``."""
    spec: MCPExternalAuthConfigSpec
    """Desired state."""
    status: ConfigStatus = Field(default_factory=ConfigStatus)
    """Observed state, written by the operator."""
