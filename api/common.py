"""Embedded types shared by several kinds (references, env, resources, OIDC, audit, overrides)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from api.authz import AuthzConfigRef
from api.base import CRDModel, Quantity, ResourceName
from api.conditions import Conditions

__all__ = [
    "ENDPOINT_PREFIX_PATTERN",
    "ENV_NAME_PATTERN",
    "HTTP_URL_PATTERN",
    "AuditConfig",
    "EnvVar",
    "HeaderForward",
    "HeaderFromSecret",
    "InlineOIDCConfig",
    "InlineOIDCSharedConfig",
    "KubernetesOIDCConfig",
    "KubernetesServiceAccountOIDCConfig",
    "LocalObjectReference",
    "MCPOIDCConfigReference",
    "OIDCConfig",
    "PodTemplateMetadataOverrides",
    "PodTemplateSpec",
    "ProxyDeploymentOverrides",
    "ProxyEndpoint",
    "ProxyServiceOverrides",
    "ProxyStatus",
    "ResourceOverrides",
    "ResourceRequirements",
    "SecretEnv",
    "SecretKeyRef",
    "SessionAffinity",
    "ToolAnnotationsOverride",
    "ToolOverride",
    "WorkloadStatus",
]

ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
HTTP_URL_PATTERN = r"^https?://[^\s/?#]+([/?#]\S*)?$"
ENDPOINT_PREFIX_PATTERN = r"^[^\s?#]*$"
"""A URL path prefix (the leading ``/`` is optional, as in ToolHive): no whitespace, query or fragment."""


class LocalObjectReference(CRDModel):
    """A reference to an object of a known kind in the same namespace."""

    name: ResourceName
    """Name of the referenced object."""


class SecretKeyRef(CRDModel):
    """A key of a Secret in the same namespace."""

    name: ResourceName
    """Name of the Secret."""
    key: str = Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")
    """Key inside the Secret's data."""


class EnvVar(CRDModel):
    """An environment variable with a plain value."""

    name: str = Field(min_length=1, pattern=ENV_NAME_PATTERN)
    """Name of the variable."""
    value: str = ""
    """Value of the variable (a plain string; use ``secrets`` for secret values)."""


class SecretEnv(CRDModel):
    """A Secret key exposed to the MCP server container as an environment variable."""

    name: ResourceName
    """Name of the Secret in the same namespace."""
    key: str = Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")
    """Key inside the Secret."""
    target_env_name: str | None = Field(default=None, pattern=ENV_NAME_PATTERN)
    """Environment variable to set; defaults to ``key`` (which must then be a valid variable name)."""

    @property
    def env_name(self) -> str:
        """The environment variable this entry sets."""
        return self.target_env_name or self.key


class ResourceRequirements(CRDModel):
    """Compute resources of a container, in the Kubernetes shape (quantities such as ``500m``, ``1Gi``)."""

    limits: dict[str, Quantity] | None = None
    """Maximum resources, e.g. ``{cpu: 500m, memory: 256Mi}``."""
    requests: dict[str, Quantity] | None = None
    """Resources reserved for scheduling, e.g. ``{cpu: 100m, memory: 128Mi}``."""


#: A (partial) Kubernetes PodTemplateSpec, stored as is and merged into the generated pod template.
PodTemplateSpec = Annotated[
    dict[str, Any],
    Field(json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}),
]


class AuditConfig(CRDModel):
    """Audit logging of MCP calls."""

    enabled: bool = False
    """Write one structured audit log line per MCP request."""


class ConfigMapKeyRef(CRDModel):
    """A key of a ConfigMap in the same namespace."""

    name: ResourceName
    """Name of the ConfigMap."""
    key: str = Field(default="ca.crt", min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")
    """The key holding the PEM certificates."""
    optional: bool | None = None
    """Must not be true: the bundle decides which certificates are trusted, so a missing one blocks what
    uses it (the gateway does not route to the entry; the proxy is not deployed or rolled), never falls
    back to other CAs."""


class CABundleSource(CRDModel):
    """Where the CA certificates come from (ToolHive's ``caBundleRef``)."""

    config_map_ref: ConfigMapKeyRef
    """A ConfigMap key holding PEM CA certificates."""


class InlineOIDCSharedConfig(CRDModel):
    """An OIDC identity provider, without what is specific to one endpoint (audience, scopes)."""

    issuer: str = Field(pattern=HTTP_URL_PATTERN)
    """Issuer URL; the token's ``iss`` claim must equal it. Its discovery document locates the JWKS."""
    jwks_url: str | None = Field(default=None, alias="jwksUrl", pattern=HTTP_URL_PATTERN)
    """JWKS URL; discovered from the issuer when unset."""
    introspection_url: str | None = Field(default=None, pattern=HTTP_URL_PATTERN)
    """RFC 7662 token introspection endpoint for opaque tokens."""
    client_id: str | None = None
    """Client id used for token introspection."""
    client_secret_ref: SecretKeyRef | None = None
    """Secret key holding the client secret used for token introspection."""
    jwks_allow_private_ip: bool = Field(default=False, alias="jwksAllowPrivateIP")
    """Allow the JWKS URL to resolve to a private address (an in-cluster identity provider)."""
    protected_resource_allow_private_ip: bool = Field(default=False, alias="protectedResourceAllowPrivateIP")
    """ToolHive's twin of ``jwksAllowPrivateIP`` (either allows private addresses for every request to
    the identity provider). Accepted for compatibility: the proxy fetches the issuer's discovery document
    and JWKS from any address the namespace's author configured, private ones included."""
    ca_bundle_ref: CABundleSource | None = None
    """A ConfigMap key of PEM CA certificates that verify the issuer's (discovery, JWKS) TLS certificate
    instead of the system CAs (an identity provider with a private CA). The ConfigMap is mounted
    read-only into the proxy (gateway) pod; a missing one blocks the workload (``ResolvedRefs=False``)
    and a change of it rolls the pods."""
    jwks_auth_token_path: str | None = Field(default=None, max_length=4096)
    """A file in the proxy (gateway) pod whose content is sent as a bearer token with the discovery and
    JWKS requests to the issuer's host, read at each fetch (never logged), e.g. the pod's service account
    token ``/var/run/secrets/kubernetes.io/serviceaccount/token`` (then mounted) for an in-cluster issuer
    whose keys need authentication. An absolute path."""
    insecure_allow_http: bool = Field(default=False, alias="insecureAllowHTTP")
    """Allow an ``http://`` issuer or JWKS URL. For test set-ups only."""


class InlineOIDCConfig(InlineOIDCSharedConfig):
    """An OIDC identity provider whose tokens the proxy accepts."""

    audience: str | None = Field(default=None, min_length=1)
    """Expected ``aud`` claim. Set it, and make it unique per server, so a token for one server is not
    accepted by another."""
    scopes: list[str] | None = None
    """Scopes advertised in the RFC 9728 protected-resource metadata (default ``[openid]``)."""


KUBERNETES_ISSUER = "https://kubernetes.default.svc"
"""The issuer of the cluster's service account tokens by default (ToolHive's default too)."""


class KubernetesServiceAccountOIDCConfig(CRDModel):
    """The cluster's own service account tokens (its API server is the issuer), without what is specific
    to one endpoint (audience, scopes)."""

    service_account: str | None = Field(
        default=None, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
    )
    """Accept only this service account's tokens (the ``sub`` claim
    ``system:serviceaccount:<namespace>:<serviceAccount>``); unset: any service account's token with the
    endpoint's audience (as ToolHive)."""
    namespace: str | None = Field(default=None, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    """The namespace of ``serviceAccount`` (default: the workload's); set alone, accept the tokens of
    every service account of this namespace."""
    issuer: str = Field(default=KUBERNETES_ISSUER, pattern=HTTP_URL_PATTERN)
    """The cluster's service account issuer (the API server's ``--service-account-issuer``); the token's
    ``iss`` claim must equal it, and its discovery document locates the JWKS."""
    jwks_url: str | None = Field(default=None, alias="jwksUrl", pattern=HTTP_URL_PATTERN)
    """The JWKS URL (e.g. ``https://kubernetes.default.svc/openid/v1/jwks``); discovered when unset."""
    introspection_url: str | None = Field(default=None, pattern=HTTP_URL_PATTERN)
    """Not supported: service account tokens are JWTs, validated against the JWKS; refused when set."""
    use_cluster_auth: bool | None = None
    """Verify the issuer's TLS certificate with the cluster's CA and send the pod's own service account
    token with the discovery and JWKS requests (both mounted by the kubelet; the pod then mounts its
    token); default true. False: the system CAs and no token (an issuer outside the cluster)."""


class KubernetesOIDCConfig(KubernetesServiceAccountOIDCConfig):
    """The cluster's service account tokens, accepted by one endpoint."""

    audience: str = Field(min_length=1)
    """Expected ``aud`` claim: the audience the clients request their tokens for (``kubectl create token
    <sa> --audience <audience>``, or a projected token volume); unique per endpoint."""
    scopes: list[str] | None = None
    """Scopes advertised in the RFC 9728 protected-resource metadata (default ``[openid]``)."""


class OIDCConfig(CRDModel):
    """Inbound authentication: which bearer tokens the endpoint accepts.

    Without it the endpoint is unauthenticated: anyone who can reach the Service can call the tools.
    """

    type: Literal["inline", "kubernetesServiceAccount"] = "inline"
    """Where the provider settings come from: ``inline`` (an identity provider, the ``inline`` block)
    or ``kubernetesServiceAccount`` (the cluster's service account tokens, that block)."""
    inline: InlineOIDCConfig | None = None
    """The provider settings; required when ``type`` is ``inline``."""
    kubernetes_service_account: KubernetesOIDCConfig | None = None
    """The service account token settings; required when ``type`` is ``kubernetesServiceAccount``."""
    resource_url: str | None = Field(default=None, pattern=HTTP_URL_PATTERN)
    """This endpoint's public URL, published as ``resource`` in the RFC 9728 protected-resource
    metadata. Defaults to the in-cluster Service URL."""


class MCPOIDCConfigReference(CRDModel):
    """A shared MCPOIDCConfig (same namespace), with what is specific to this endpoint."""

    name: ResourceName
    """Name of the MCPOIDCConfig."""
    audience: str = Field(min_length=1)
    """Expected ``aud`` claim of the tokens this endpoint accepts. Make it unique per endpoint, so a
    token for one server is not accepted by another."""
    scopes: list[str] | None = None
    """Scopes advertised in the RFC 9728 protected-resource metadata (default ``[openid]``)."""
    resource_url: str | None = Field(default=None, pattern=HTTP_URL_PATTERN)
    """This endpoint's public URL, published as ``resource`` in the RFC 9728 protected-resource
    metadata. Defaults to the in-cluster Service URL."""


class HeaderFromSecret(CRDModel):
    """A header added to upstream requests, its value read from a Secret."""

    header_name: str = Field(min_length=1, max_length=255, pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
    """Name of the HTTP header."""
    value_secret_ref: SecretKeyRef
    """Secret key holding the header's value."""


class HeaderForward(CRDModel):
    """Extra headers the proxy adds to every request it sends upstream."""

    add_plaintext_headers: dict[str, str] | None = None
    """Headers with literal values (no secrets here: they are stored in plain text)."""
    add_headers_from_secret: list[HeaderFromSecret] | None = None
    """Headers whose values come from Secrets."""


class ToolAnnotationsOverride(CRDModel):
    """Replacement MCP tool annotations (hints shown to clients)."""

    title: str | None = None
    """Human-readable title."""
    read_only_hint: bool | None = None
    """The tool does not modify its environment."""
    destructive_hint: bool | None = None
    """The tool may perform destructive updates."""
    idempotent_hint: bool | None = None
    """Repeated calls with the same arguments have no additional effect."""
    open_world_hint: bool | None = None
    """The tool interacts with an open world of external entities."""


class ToolOverride(CRDModel):
    """How one tool is presented to clients."""

    name: str | None = Field(default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.\-]+$")
    """New name of the tool."""
    description: str | None = None
    """New description of the tool."""
    annotations: ToolAnnotationsOverride | None = None
    """New annotations of the tool."""


class PodTemplateMetadataOverrides(CRDModel):
    """Labels and annotations added to the pod template."""

    labels: dict[str, str] | None = None
    """Extra pod labels (the operator's own ``app.kubernetes.io`` labels are refused)."""
    annotations: dict[str, str] | None = None
    """Extra pod annotations (``mcp-operator.dev/config-hash`` is the operator's and refused)."""


class ProxyDeploymentOverrides(CRDModel):
    """Additions to the proxy Deployment."""

    labels: dict[str, str] | None = None
    """Extra Deployment labels (the operator's own ``app.kubernetes.io`` labels are refused)."""
    annotations: dict[str, str] | None = None
    """Extra Deployment annotations."""
    pod_template_metadata_overrides: PodTemplateMetadataOverrides | None = None
    """Extra labels and annotations on the proxy pods."""
    env: Annotated[
        list[EnvVar] | None,
        Field(json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}),
    ] = None
    """Extra environment variables of the proxy container."""
    image_pull_secrets: list[LocalObjectReference] | None = None
    """Image pull secrets of the proxy pods, also set on the proxy's ServiceAccount."""


class ProxyServiceOverrides(CRDModel):
    """Additions to the proxy Service."""

    labels: dict[str, str] | None = None
    """Extra Service labels (the operator's own ``app.kubernetes.io`` labels are refused)."""
    annotations: dict[str, str] | None = None
    """Extra Service annotations (e.g. for a cloud load balancer)."""


class ResourceOverrides(CRDModel):
    """Metadata, environment and pull secrets added to the objects the operator creates."""

    proxy_deployment: ProxyDeploymentOverrides | None = None
    """Additions to the proxy Deployment."""
    proxy_service: ProxyServiceOverrides | None = None
    """Additions to the proxy Service."""


SessionAffinity = Literal["ClientIP", "None"]


class ProxyEndpoint(CRDModel):
    """How clients reach a proxy kind's endpoint and who may use it (MCPServer and MCPRemoteProxy share
    these fields)."""

    oidc_config: OIDCConfig | None = None
    """Inbound authentication. Without it (and without ``oidcConfigRef``) the endpoint is
    unauthenticated."""
    oidc_config_ref: MCPOIDCConfigReference | None = None
    """Inbound authentication with a shared MCPOIDCConfig, plus this endpoint's audience; instead of
    ``oidcConfig``. While the referenced config is missing or invalid nothing is deployed."""
    authz_config: AuthzConfigRef | None = None
    """Cedar authorization of each tool call, prompt and resource (docs/auth.md); a change rolls the
    proxy."""
    authz_config_ref: LocalObjectReference | None = None
    """An MCPAuthzConfig with the Cedar policies (instead of ``authzConfig``); a change rolls the proxy."""

    session_affinity: SessionAffinity | None = None
    """``ClientIP`` makes the Service send a client's connections to one pod (for stateful MCP
    sessions across proxy replicas); ``None`` or unset: the Service's default, no affinity."""

    trust_proxy_headers: bool | None = None
    """Trust the ``X-Forwarded-Prefix`` header of a reverse proxy in front of this endpoint: the
    message endpoint announced on ``/sse`` then starts with it (when ``endpointPrefix`` is unset). Set
    it only when every request passes through a proxy that sets or strips the header. Unset: false."""
    endpoint_prefix: str | None = Field(default=None, pattern=ENDPOINT_PREFIX_PATTERN)
    """A path prefix put before the message endpoint announced on ``/sse``, for an ingress that strips
    it before forwarding (e.g. ``/github``). Wins over ``X-Forwarded-Prefix``."""


class WorkloadStatus(CRDModel):
    """Observed state every workload kind reports (each kind narrows ``phase`` to its vocabulary)."""

    phase: str | None = None
    """Summary of the state."""
    message: str | None = None
    """Human-readable detail of the phase."""
    url: str | None = None
    """URL clients use, e.g. ``http://NAME.NAMESPACE.svc.cluster.local:PORT/mcp``."""
    ready_replicas: int | None = Field(default=None, ge=0, json_schema_extra={"format": "int32"})
    """Proxy (or gateway) pods ready to serve."""
    observed_generation: int | None = Field(default=None, ge=0, json_schema_extra={"format": "int64"})
    """The ``metadata.generation`` this status was computed from."""
    conditions: Conditions = Field(default_factory=list)
    """Current conditions (``Accepted``, ``ResolvedRefs``, ``Ready``, ...)."""


class ProxyStatus(WorkloadStatus):
    """Observed state of a proxy workload (MCPServer, MCPRemoteProxy)."""

    tool_config_hash: str | None = None
    """Hash of the referenced MCPToolConfig that the running proxy uses."""
    external_auth_config_hash: str | None = None
    """Hash of the referenced MCPExternalAuthConfig that the running proxy uses."""
    auth_server_config_hash: str | None = None
    """Hash of the ``spec.authServerRef`` MCPExternalAuthConfig whose authorization server the proxy runs."""
    oidc_config_hash: str | None = None
    """Hash of the referenced MCPOIDCConfig that the running proxy uses."""
    authz_config_hash: str | None = None
    """Hash of the referenced MCPAuthzConfig whose policies the running proxy enforces."""
    telemetry_config_hash: str | None = None
    """Hash of the referenced MCPTelemetryConfig that the running proxy uses."""
