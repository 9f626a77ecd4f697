"""The MCP proxy's config file (``mcp-operator proxy --config FILE``).

The MCPServer and MCPRemoteProxy reconcilers render :class:`ProxyConfig` as JSON into ConfigMap
``<name>-proxy``; the proxy loads it with :func:`load_proxy_config`. Users may write the same file by hand
(JSON or YAML) to run the proxy outside Kubernetes. Keys are camelCase; Python field names are accepted
too. The file never holds secret values: inbound OIDC and outbound credentials reference environment
variables or files (:class:`api.auth_config.SecretValueSource`).

Shape::

    {
      "name": "github",                      # used in logs, metrics and serverInfo
      "port": 8080,
      "backend": {"type": "stdio", "command": ["mcp-server-time", "--local-timezone", "UTC"]}
               | {"type": "attach", "namespace": "ns", "pod": "github-server-0", "container": "mcp"}
               | {"type": "http", "url": "http://github-server.ns.svc:8080/mcp",
                  "transport": "streamable-http"},
      "toolFilter": {"allow": ["a", "b"], "deny": ["c"],
                     "overrides": {"a": {"name": "renamed_a", "description": "..."}}},
      "oidc": {...api.auth_config.OIDCConfig...},
      "authServer": {...api.authserver_config.AuthServerConfig...},   # instead of oidc
      "authz": {"policies": ["permit(principal, action, resource);"], "entitiesJson": "[]"},
      "audit": {"enabled": true, "includeArguments": false},
      "limits": {"maxBodyBytes": 4194304, "callTimeoutSeconds": 300},
      "allowedHosts": ["github.ns.svc.cluster.local:*"], "allowedOrigins": ["https://app.example.com"],
      "sessionStorage": {...}, "rateLimiting": {...}   # api.scaling_config
    }

Public names: :class:`ProxyConfig`, :class:`StdioBackend`, :class:`AttachBackend`, :class:`HttpBackend`,
:data:`BackendConfig`, :class:`ToolFilterConfig`, :class:`ToolOverrideConfig`, :class:`AuditConfig`,
:class:`LimitsConfig`, :func:`load_proxy_config`, :func:`dump_proxy_config`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from api.auth_config import HeaderForwardConfig, OIDCConfig, OutboundAuthConfig
from api.authserver_config import AuthServerConfig
from api.authz_config import CedarConfig
from api.common import ENDPOINT_PREFIX_PATTERN
from api.scaling_config import RateLimitConfig, SessionStorageConfig

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_PORT",
    "AttachBackend",
    "AuditConfig",
    "BackendConfig",
    "HttpBackend",
    "LimitsConfig",
    "ProxyConfig",
    "ProxyConfigError",
    "StdioBackend",
    "ToolFilterConfig",
    "ToolOverrideConfig",
    "dump_proxy_config",
    "load_proxy_config",
]

DEFAULT_PORT = 8080
"""Where the proxy listens unless told otherwise."""
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
"""4 MiB: the MCP SDK's own default request-body limit."""

# MCP 2025-11-25 tool names: 1-128 characters from A-Z a-z 0-9 _ - . (case-sensitive).
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,128}\Z")
# Kubernetes DNS-1123 label (namespace, container) and subdomain (pod) names.
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\Z")


class ProxyConfigError(ValueError):
    """The config file cannot be read or does not validate; the message names the field and the fix."""


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, validate_by_name=True
    )


class StdioBackend(_Model):
    """A local subprocess speaking MCP over stdin/stdout (``mcp-operator proxy -- CMD ARGS``)."""

    type: Literal["stdio"] = "stdio"
    command: tuple[str, ...] = Field(min_length=1)
    """argv of the server; the first element is looked up on PATH."""
    env: dict[str, str] = Field(default_factory=dict)
    """Extra environment variables (non-secret; secrets arrive through the container's own env)."""
    cwd: str | None = None
    """Working directory of the subprocess; default: the proxy's."""


class AttachBackend(_Model):
    """The stdin/stdout of a container in the cluster, reached through the Kubernetes attach API."""

    type: Literal["attach"] = "attach"
    namespace: str
    pod: str
    """The server pod, ``<name>-server-0`` for an MCPServer with ``transport: stdio``."""
    container: str = "mcp"
    api_server: str | None = None
    """Kubernetes API URL; default: the in-cluster service (``KUBERNETES_SERVICE_HOST``)."""
    token_file: str = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    """Bearer token of the proxy's service account (re-read on every connect: tokens rotate)."""
    ca_file: str | None = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
    """CA bundle for the API server; ``null`` uses the system trust store."""

    @field_validator("namespace", "container")
    @classmethod
    def _label(cls, value: str) -> str:
        if not _DNS_LABEL.match(value):
            raise ValueError(f"{value!r} is not a valid Kubernetes name (DNS-1123 label)")
        return value

    @field_validator("pod")
    @classmethod
    def _subdomain(cls, value: str) -> str:
        if not _DNS_SUBDOMAIN.match(value):
            raise ValueError(f"pod {value!r} is not a valid Kubernetes pod name (DNS-1123 subdomain)")
        return value


class HttpBackend(_Model):
    """An MCP server reached over HTTP: streamable HTTP (``/mcp``) or legacy SSE (``/sse``)."""

    type: Literal["http"] = "http"
    url: str
    transport: Literal["streamable-http", "sse"] = "streamable-http"
    auth: OutboundAuthConfig | None = None
    """How the proxy authenticates to the backend (the client's own token is never forwarded)."""
    header_forward: HeaderForwardConfig | None = None
    """Extra headers sent on every backend request."""
    timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    """Connect / read timeout of one HTTP exchange with the backend (not of a whole tool call)."""
    allow_private_endpoint: bool = True
    """Allow the backend's host to resolve to a private or loopback address (``gateway.backends.ssrf``).
    True for in-cluster and local backends; the operator renders false for an MCPRemoteProxy unless its
    ``spec.allowPrivateEndpoint`` is true. Link-local (cloud metadata), unspecified and multicast
    addresses are refused either way."""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url must be an absolute http(s) URL like http://host:8080/mcp, got {value!r}")
        if parts.username or parts.password:
            raise ValueError("url must not carry credentials; configure backend.auth with a secret reference")
        return value


BackendConfig = Annotated[StdioBackend | AttachBackend | HttpBackend, Field(discriminator="type")]
"""Where the proxy's MCP server lives; the ``type`` key selects the variant."""


class ToolOverrideConfig(_Model):
    """Rename and/or re-describe one tool (MCPToolConfig ``toolsOverride`` semantics)."""

    name: str | None = None
    """The name clients see instead of the original."""
    description: str | None = None
    """The description clients see instead of the original."""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not _TOOL_NAME.match(value):
            raise ValueError(f"override name {value!r} is not a valid MCP tool name (1-128 of A-Za-z0-9_-.)")
        return value


class ToolFilterConfig(_Model):
    """Which backend tools clients see, and under which name (keys are always the ORIGINAL tool names)."""

    allow: tuple[str, ...] | None = None
    """Only these tools are visible; ``null`` = all (MCPToolConfig ``toolsFilter``)."""
    deny: tuple[str, ...] = ()
    """These tools are hidden even when allowed."""
    overrides: dict[str, ToolOverrideConfig] = Field(default_factory=dict)
    """Original tool name -> new name / description."""

    @model_validator(mode="after")
    def _unique_names(self) -> ToolFilterConfig:
        renamed = [o.name for o in self.overrides.values() if o.name is not None]
        duplicates = sorted({n for n in renamed if renamed.count(n) > 1})
        if duplicates:
            raise ValueError(f"toolFilter.overrides gives several tools the name {duplicates}")
        return self


class AuditConfig(_Model):
    """One structured audit line per tool call (caller, tool, duration, outcome)."""

    enabled: bool = True
    include_arguments: bool = False
    """Also log the call's arguments (may contain personal data: off by default)."""
    max_data_size: int | None = Field(default=None, ge=0)
    """With ``includeArguments``: arguments longer than this many bytes (as JSON) are logged cut to it."""
    component: str | None = None
    """Written as the line's ``component`` (which part of the system audited the call)."""


class LimitsConfig(_Model):
    """Request limits of the front."""

    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=1024, le=256 * 1024 * 1024)
    """Larger request bodies get HTTP 413."""
    call_timeout_seconds: float = Field(default=300.0, gt=0, le=86400)
    """A backend request unanswered for this long fails with a JSON-RPC error."""


class ProxyConfig(_Model):
    """The whole proxy configuration (one file, rendered by the operator or written by hand)."""

    name: str = "mcp-proxy"
    """Shown as serverInfo.name to clients and in logs / metrics."""
    host: str = "127.0.0.1"
    port: int = Field(default=DEFAULT_PORT, ge=1, le=65535)
    backend: BackendConfig
    tool_filter: ToolFilterConfig = Field(default_factory=ToolFilterConfig)
    oidc: OIDCConfig | None = None
    """Inbound JWT validation; absent = no inbound auth."""
    auth_server: AuthServerConfig | None = None
    """The embedded OAuth 2.1 authorization server (docs/auth.md); it authenticates the MCP endpoint
    itself, so it excludes ``oidc``."""
    authz: CedarConfig | None = None
    """Cedar policies deciding every call, get, read and list (docs/auth.md); absent = none."""
    audit: AuditConfig = Field(default_factory=AuditConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    allowed_hosts: tuple[str, ...] | None = None
    """Host header values accepted (``host:*`` wildcards the port); ``null`` = loopback names when bound
    to loopback, otherwise any (in the cluster the Service name varies)."""
    allowed_origins: tuple[str, ...] | None = None
    """Origin header values accepted when present (browsers); ``null`` = loopback origins only."""
    session_storage: SessionStorageConfig = Field(default_factory=SessionStorageConfig)
    """Where 2025-11-25 sessions live: memory (this replica) or Redis (every replica); docs/scaling.md."""
    rate_limiting: RateLimitConfig | None = None
    """Token-bucket limits on ``tools/call`` (ToolHive's ``rateLimiting``); docs/scaling.md."""
    endpoint_prefix: str = Field(default="", pattern=ENDPOINT_PREFIX_PATTERN)
    """A path prefix put before the message endpoint announced on ``/sse`` (an ingress that strips a
    path prefix before forwarding); wins over ``X-Forwarded-Prefix``."""
    trust_proxy_headers: bool = False
    """Take the prefix announced on ``/sse`` from the request's ``X-Forwarded-Prefix`` header (set by a
    trusted reverse proxy) when ``endpointPrefix`` is unset."""

    @model_validator(mode="after")
    def _one_inbound_auth(self) -> ProxyConfig:
        server = self.auth_server
        if server is None:
            return self
        if self.oidc is not None:
            raise ValueError("authServer authenticates the MCP endpoint itself: remove oidc")
        auth = getattr(self.backend, "auth", None)
        injected = not server.disable_upstream_token_injection
        if auth is not None and injected and auth.type != "tokenExchange":
            raise ValueError(
                f"backend.auth {auth.type} and authServer's upstream token both set the backend's "
                "credential: remove backend.auth, or set authServer.disableUpstreamTokenInjection"
            )
        if auth is not None and not injected and auth.type == "tokenExchange":
            raise ValueError(
                "backend.auth tokenExchange exchanges the caller's upstream token, which "
                "authServer.disableUpstreamTokenInjection withholds: unset one of them"
            )
        return self


def load_proxy_config(path: str | Path) -> ProxyConfig:
    """Read and validate a JSON or YAML proxy config file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProxyConfigError(f"cannot read proxy config {file}: {exc.strerror}") from exc
    data: Any
    try:
        data = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ProxyConfigError(f"proxy config {file} is not valid JSON/YAML: {exc}") from exc
    try:
        return ProxyConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()
        )
        raise ProxyConfigError(f"proxy config {file} is invalid: {problems}") from exc


def dump_proxy_config(config: ProxyConfig) -> str:
    """The canonical JSON text (camelCase, defaults omitted, sorted keys): stable for hashing."""
    data = config.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    data["backend"] = config.backend.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    data["backend"]["type"] = config.backend.type
    auth = getattr(config.backend, "auth", None)
    if auth is not None:  # a discriminator must survive exclude_defaults, or the file does not load back
        data["backend"]["auth"]["type"] = auth.type
    return json.dumps(data, sort_keys=True, separators=(",", ":"))
