"""Resolved runtime auth configuration of the data plane (proxy, remote proxy, vmcp gateway).

The operator renders these models from the CRDs (an ``oidcConfigRef`` for inbound auth, an
``MCPExternalAuthConfig`` and ``headerForward`` for outbound auth) into the JSON config file of the proxy
or gateway; users may write the same file by hand to run the data plane outside Kubernetes.

No secret value ever appears in this configuration. Every secret is a :class:`SecretValueSource`: the
name of an environment variable or the path of a file, which the operator fills from a Kubernetes
Secret (``env[].valueFrom.secretKeyRef`` or a Secret volume). The data plane reads the value at run
time (``gateway.auth.secrets``).

Public names:

- :class:`SecretValueSource` ``{env | file}``: where a secret value is read from at run time.
- :class:`OIDCConfig`: inbound JWT validation (issuer, audience, JWKS, algorithms, scopes, RFC 9728).
- :data:`OutboundAuthConfig`: discriminated union on ``type`` of :class:`HeaderInjectionAuth`
  (``headerInjection``), :class:`BearerTokenAuth` (``bearerToken``), :class:`OAuth2ClientCredentialsAuth`
  (``oauth2ClientCredentials``) and :class:`TokenExchangeAuth` (``tokenExchange``, RFC 8693).
- :class:`HeaderForwardConfig` ``{addPlaintextHeaders, addHeadersFromSecret}``: extra upstream headers.
- :func:`parse_outbound_auth`: validate a plain dict into one of the outbound models.

All models use camelCase aliases (the file's keys) and accept the Python field names too.
"""

from __future__ import annotations

import ipaddress
import re
import ssl
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator
from pydantic.alias_generators import to_camel

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "DEFAULT_ALLOWED_ALGORITHMS",
    "HEADER_NAME",
    "HMAC_ALGORITHMS",
    "PASSTHROUGH_REFUSED",
    "RESERVED_HEADERS",
    "TOKEN_TYPE_ACCESS_TOKEN",
    "TOKEN_TYPE_ID_TOKEN",
    "TOKEN_TYPE_JWT",
    "BearerTokenAuth",
    "HeaderForwardConfig",
    "HeaderFromSecret",
    "HeaderInjectionAuth",
    "OAuth2ClientCredentialsAuth",
    "OIDCConfig",
    "OutboundAuthConfig",
    "SecretValueSource",
    "TokenExchangeAuth",
    "ca_bundle_context",
    "check_url",
    "is_loopback_host",
    "is_loopback_url",
    "parse_outbound_auth",
    "passthrough_refusal",
]

#: Asymmetric JWS algorithms whose verification key comes from the issuer's JWKS.
ASYMMETRIC_ALGORITHMS: frozenset[str] = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
#: Symmetric algorithms; accepted only with an explicit ``sharedSecret`` (never with a JWKS key).
HMAC_ALGORITHMS: frozenset[str] = frozenset({"HS256", "HS384", "HS512"})
#: The default allow-list: the RS256 and ES256 families.
DEFAULT_ALLOWED_ALGORITHMS: tuple[str, ...] = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512")

TOKEN_TYPE_ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token"
TOKEN_TYPE_ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"
TOKEN_TYPE_JWT = "urn:ietf:params:oauth:token-type:jwt"

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
#: RFC 9110 token characters: what a header field name may contain.
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,255}\Z")
#: Headers the data plane computes itself; configuring them would break framing or routing.
RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "connection",
        "transfer-encoding",
        "te",
        "upgrade",
        "keep-alive",
        "proxy-connection",
        "trailer",
        "mcp-session-id",
        "mcp-protocol-version",
    }
)

PASSTHROUGH_REFUSED = RESERVED_HEADERS | frozenset(
    {
        # Credentials: forwarding a caller's verbatim to every backend is token passthrough.
        "authorization",
        "proxy-authorization",
        "proxy-authenticate",
        "cookie",
        # Hop-by-hop and request framing, as in ToolHive.
        "http2-settings",
        "expect",
        # Who the request is from: only the gateway's own trusted front may say.
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-real-ip",
        # What the gateway sets on each backend request itself.
        "accept",
        "accept-encoding",
        "last-event-id",
        "mcp-method",
        "mcp-name",
        "traceparent",
        "tracestate",
    }
)
"""Client headers a gateway never forwards to its backends (``passthroughHeaders``): ToolHive's restricted
set, credentials, and the headers the gateway computes for each backend request (``Mcp-Param-*`` too)."""


def passthrough_refusal(name: str) -> str | None:
    """Why the client header ``name`` cannot be forwarded to every backend, or None when it can."""
    if not HEADER_NAME.match(name):
        return f"{name!r} is not a valid HTTP header name (RFC 9110 token characters); fix its spelling"
    lower = name.lower()
    if lower in PASSTHROUGH_REFUSED or lower.startswith("mcp-param-"):
        return (
            f"{name!r} is a credential, hop-by-hop or gateway-owned header and is never forwarded; remove "
            "it (backend credentials go in spec.outgoingAuth)"
        )
    return None


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, validate_by_name=True
    )


def is_loopback_host(host: str) -> bool:
    """True when ``host`` is ``localhost`` (or a subdomain of it) or a loopback IP address."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    """True when the URL's host is ``localhost`` or a loopback IP address."""
    return is_loopback_host(urlsplit(url).hostname or "")


def check_url(field: str, url: str, *, insecure_allow_http: bool) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"{field} must be an absolute http(s) URL, got {url!r}")
    if parts.username or parts.password:
        raise ValueError(f"{field} must not carry credentials in the URL; use a secret reference instead")
    if parts.scheme == "http" and not insecure_allow_http and not is_loopback_url(url):
        raise ValueError(
            f"{field} must use https (got {url!r}); set insecureAllowHttp: true only for test set-ups"
        )
    return url


def _check_header_name(field: str, name: str) -> str:
    if not HEADER_NAME.match(name):
        raise ValueError(f"{field} {name!r} is not a valid HTTP header name (RFC 9110 token characters)")
    if name.lower() in RESERVED_HEADERS:
        raise ValueError(f"{field} {name!r} is computed by the proxy and cannot be configured")
    return name


class SecretValueSource(_Model):
    """Where a secret value is read at run time: exactly one of ``env`` or ``file``.

    The operator sets ``env`` for a Secret key exposed as an environment variable
    (``valueFrom.secretKeyRef``) or ``file`` for a key of a mounted Secret volume. A trailing newline
    in a file is stripped.
    """

    env: str | None = None
    """Name of the environment variable holding the value."""
    file: str | None = None
    """Absolute path of the file holding the value."""

    @field_validator("env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.match(value):
            raise ValueError(f"env {value!r} is not a valid environment variable name")
        return value

    @field_validator("file")
    @classmethod
    def _file_path(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError(f"file {value!r} must be an absolute path (the Secret volume mount)")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretValueSource:
        if (self.env is None) == (self.file is None):
            raise ValueError(
                "a secret reference needs exactly one of env (an environment variable name) or file "
                "(a path); secret values themselves never go into the config"
            )
        return self

    def describe(self) -> str:
        """Human-readable location for error messages (never the value)."""
        return f"environment variable {self.env}" if self.env is not None else f"file {self.file}"


class OIDCConfig(_Model):
    """Inbound authentication: validate bearer JWTs issued by one OIDC / OAuth 2.1 issuer."""

    issuer: str
    """Expected ``iss`` claim, exactly; also where discovery starts. https unless loopback."""
    audience: str
    """Expected ``aud`` (RFC 8707: this server's identity); tokens for other audiences are refused."""
    jwks_url: str | None = None
    """JWKS location; default: ``jwks_uri`` of ``{issuer}/.well-known/openid-configuration``."""
    allowed_algorithms: tuple[str, ...] = DEFAULT_ALLOWED_ALGORITHMS
    """Accepted JWS ``alg`` values. ``none`` is never accepted; HS* only with ``sharedSecret``."""
    shared_secret: SecretValueSource | None = None
    """HMAC key for HS* tokens (issuers without a JWKS). Only used for HS* algorithms."""
    clock_skew_seconds: int = Field(default=30, ge=0, le=300)
    """Leeway applied to ``exp``, ``nbf`` and ``iat``."""
    required_scopes: tuple[str, ...] = ()
    """Scopes every token must carry (``scope`` / ``scp``); otherwise 403 ``insufficient_scope``."""
    resource_url: str | None = None
    """This server's public URL for RFC 9728 metadata; default: the URL the proxy was given."""
    jwks_cache_seconds: int = Field(default=300, ge=0, le=86400)
    """How long a fetched JWKS is trusted before a background refetch."""
    jwks_min_refresh_seconds: float = Field(default=10.0, ge=0, le=3600)
    """Minimum spacing of JWKS refetches triggered by unknown ``kid`` values (anti-hammering)."""
    insecure_allow_http: bool = False
    """Allow a plain-http issuer / JWKS URL that is not loopback. For test set-ups only."""
    ca_bundle_path: str | None = None
    """A PEM file of the CAs that verify the issuer's and the JWKS URL's TLS certificates, instead of the
    system CAs (the cluster's CA for its service account issuer)."""
    jwks_auth_token_path: str | None = None
    """A file holding a bearer token sent with the discovery and JWKS requests, read at each fetch (a
    pod's service account token, which the kubelet rotates)."""
    subject: str | None = None
    """The ``sub`` claim every token must have; ending with ``:``, the prefix it must start with
    (``system:serviceaccount:<namespace>:`` for every service account of a namespace)."""

    @field_validator("allowed_algorithms")
    @classmethod
    def _known_algorithms(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("allowedAlgorithms must list at least one algorithm, e.g. RS256")
        for alg in value:
            if alg.lower() == "none":
                raise ValueError("allowedAlgorithms must not contain 'none': unsigned tokens are refused")
            if alg not in ASYMMETRIC_ALGORITHMS | HMAC_ALGORITHMS:
                known = ", ".join(sorted(ASYMMETRIC_ALGORITHMS | HMAC_ALGORITHMS))
                raise ValueError(f"allowedAlgorithms has unknown algorithm {alg!r}; known: {known}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> OIDCConfig:
        check_url("issuer", self.issuer, insecure_allow_http=self.insecure_allow_http)
        if self.jwks_url is not None:
            check_url("jwksUrl", self.jwks_url, insecure_allow_http=self.insecure_allow_http)
        if self.resource_url is not None:
            check_url("resourceUrl", self.resource_url, insecure_allow_http=True)
        hmac = [alg for alg in self.allowed_algorithms if alg in HMAC_ALGORITHMS]
        if hmac and self.shared_secret is None:
            raise ValueError(
                f"allowedAlgorithms contains {', '.join(hmac)} but no sharedSecret is configured; "
                "remove the HS* algorithms or set sharedSecret"
            )
        if self.shared_secret is not None and not hmac:
            raise ValueError("sharedSecret is set but allowedAlgorithms has no HS* algorithm to use it")
        return self


class HeaderInjectionAuth(_Model):
    """Send a fixed header (e.g. ``X-API-Key``) whose value comes from a Secret."""

    type: Literal["headerInjection"] = "headerInjection"
    header_name: str
    """Header to set on every upstream request."""
    value_secret_ref: SecretValueSource
    """Where the header value is read."""

    @field_validator("header_name")
    @classmethod
    def _header(cls, value: str) -> str:
        return _check_header_name("headerName", value)


class BearerTokenAuth(_Model):
    """Send ``Authorization: Bearer <token>`` with a static token from a Secret."""

    type: Literal["bearerToken"] = "bearerToken"
    token_secret_ref: SecretValueSource
    """Where the token is read."""


class OAuth2ClientCredentialsAuth(_Model):
    """Obtain an access token with the OAuth 2.0 client credentials grant and send it as a bearer."""

    type: Literal["oauth2ClientCredentials"] = "oauth2ClientCredentials"
    token_url: str
    """The token endpoint."""
    client_id: str = Field(min_length=1)
    client_secret_ref: SecretValueSource
    """Where the client secret is read."""
    scopes: tuple[str, ...] = ()
    audience: str | None = None
    """Sent as ``audience`` (and ``resource`` is not sent) when set."""
    client_auth_method: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic"
    """How the client authenticates to the token endpoint."""
    refresh_margin_seconds: int = Field(default=60, ge=0, le=3600)
    """Refresh this long before the token expires."""
    insecure_allow_http: bool = False
    """Allow a plain-http, non-loopback tokenUrl. For test set-ups only."""

    @model_validator(mode="after")
    def _url(self) -> OAuth2ClientCredentialsAuth:
        check_url("tokenUrl", self.token_url, insecure_allow_http=self.insecure_allow_http)
        return self


class TokenExchangeAuth(_Model):
    """RFC 8693 token exchange: trade the validated inbound token for a token for the backend."""

    type: Literal["tokenExchange"] = "tokenExchange"
    token_url: str
    """The token endpoint of the authorization server that performs the exchange."""
    client_id: str | None = None
    """Client id of this proxy at that server; with ``clientSecretRef``, or neither."""
    client_secret_ref: SecretValueSource | None = None
    audience: str | None = None
    """Logical name of the target service (``audience`` parameter)."""
    scopes: tuple[str, ...] = ()
    subject_token_type: str = TOKEN_TYPE_ACCESS_TOKEN
    requested_token_type: str = TOKEN_TYPE_ACCESS_TOKEN
    external_token_header_name: str | None = None
    """Header for the exchanged token; default ``Authorization: Bearer <token>``."""
    client_auth_method: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic"
    refresh_margin_seconds: int = Field(default=30, ge=0, le=3600)
    """An exchanged token this close to expiry is not reused."""
    insecure_allow_http: bool = False
    """Allow a plain-http, non-loopback tokenUrl. For test set-ups only."""

    @field_validator("external_token_header_name")
    @classmethod
    def _header(cls, value: str | None) -> str | None:
        return None if value is None else _check_header_name("externalTokenHeaderName", value)

    @model_validator(mode="after")
    def _consistent(self) -> TokenExchangeAuth:
        check_url("tokenUrl", self.token_url, insecure_allow_http=self.insecure_allow_http)
        if self.client_secret_ref is not None and self.client_id is None:
            raise ValueError("clientSecretRef is set but clientId is missing; set both or neither")
        return self


OutboundAuthConfig = Annotated[
    HeaderInjectionAuth | BearerTokenAuth | OAuth2ClientCredentialsAuth | TokenExchangeAuth,
    Field(discriminator="type"),
]
"""How the proxy authenticates to its backend; the ``type`` key selects the variant."""

_OUTBOUND_ADAPTER: TypeAdapter[OutboundAuthConfig] = TypeAdapter(OutboundAuthConfig)


def parse_outbound_auth(data: Any) -> OutboundAuthConfig:
    """Validate a plain mapping (``{"type": ..., ...}``) into an outbound auth model."""
    return _OUTBOUND_ADAPTER.validate_python(data)


class HeaderFromSecret(_Model):
    """One upstream header whose value comes from a Secret."""

    header_name: str
    value_secret_ref: SecretValueSource

    @field_validator("header_name")
    @classmethod
    def _header(cls, value: str) -> str:
        return _check_header_name("headerName", value)


class HeaderForwardConfig(_Model):
    """Extra headers added to every upstream request (ToolHive's ``headerForward``)."""

    add_plaintext_headers: dict[str, str] = Field(default_factory=dict)
    """Header name -> literal value (not secret)."""
    add_headers_from_secret: tuple[HeaderFromSecret, ...] = ()
    """Headers whose values are read from secret references."""

    @field_validator("add_plaintext_headers")
    @classmethod
    def _plain(cls, value: dict[str, str]) -> dict[str, str]:
        for name, header_value in value.items():
            _check_header_name("addPlaintextHeaders", name)
            if "\r" in header_value or "\n" in header_value:
                raise ValueError(f"addPlaintextHeaders[{name!r}] must not contain line breaks")
        return value

    @model_validator(mode="after")
    def _no_duplicates(self) -> HeaderForwardConfig:
        seen = {name.lower() for name in self.add_plaintext_headers}
        for entry in self.add_headers_from_secret:
            if entry.header_name.lower() in seen:
                raise ValueError(
                    f"header {entry.header_name!r} is configured twice (plaintext and from a secret, or "
                    "twice from secrets); keep one"
                )
            seen.add(entry.header_name.lower())
        return self


def ca_bundle_context(pem: str) -> ssl.SSLContext:
    """A TLS client context trusting only the CA certificates of ``pem`` (not the system CAs); raises
    ValueError when it holds no valid PEM certificate."""
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise ValueError("the CA bundle holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
    try:
        return ssl.create_default_context(cadata=pem)
    except (ssl.SSLError, ValueError) as err:
        raise ValueError(f"the CA bundle holds no valid PEM certificate ({err})") from None
