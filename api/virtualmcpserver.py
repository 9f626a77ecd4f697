"""VirtualMCPServer: the gateway that aggregates the members of an MCPGroup behind one endpoint."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import BeforeValidator, Field
from pydantic.config import JsonDict

from api.authz import AuthzConfigRef
from api.base import CRDModel, ResourceName
from api.common import (
    LocalObjectReference,
    MCPOIDCConfigReference,
    OIDCConfig,
    PodTemplateSpec,
    ResourceRequirements,
    SessionAffinity,
    ToolOverride,
    WorkloadStatus,
)
from api.composite import CompositeToolConfig, CompositeToolRef
from api.mcptelemetryconfig import InlineTelemetry, MCPTelemetryConfigReference
from api.resource import CustomResource
from api.scaling import PodDisruptionBudgetSpec, RateLimiting, SessionStorage

__all__ = [
    "DEFAULT_PREFIX_FORMAT",
    "Aggregation",
    "BackendAuthConfig",
    "BackendStatus",
    "CircuitBreaker",
    "CodeMode",
    "ConflictResolutionConfig",
    "EmbeddingHeaderValue",
    "FailureHandling",
    "GatewayAudit",
    "IncomingAuth",
    "OperationalConfig",
    "Optimizer",
    "OutgoingAuth",
    "Timeouts",
    "VirtualMCPConfig",
    "VirtualMCPServer",
    "VirtualMCPServerPhase",
    "VirtualMCPServerSpec",
    "VirtualMCPServerStatus",
    "WorkloadToolConfig",
]

DEFAULT_PREFIX_FORMAT = "{workload}_"
VirtualMCPServerPhase = Literal["Pending", "Ready", "Degraded", "Failed"]
Duration = Annotated[str, Field(pattern=r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$")]
_EMPTY_OBJECT_DEFAULT: JsonDict = {"default": {}}


class IncomingAuth(CRDModel):
    """How clients authenticate to the gateway."""

    type: Literal["anonymous", "oidc"]
    """``anonymous`` accepts every client; ``oidc`` requires a bearer token (set ``oidcConfig`` or
    ``oidcConfigRef``)."""
    oidc_config: OIDCConfig | None = None
    """The identity provider; with ``type: oidc``, this or ``oidcConfigRef``."""
    oidc_config_ref: MCPOIDCConfigReference | None = None
    """A shared MCPOIDCConfig, plus the gateway's audience; with ``type: oidc``, this or
    ``oidcConfig``. While the referenced config is missing or invalid nothing is deployed."""
    authz_config: AuthzConfigRef | None = None
    """Cedar authorization of each tool call, prompt and resource (docs/auth.md); a change is
    hot-reloaded by the gateway."""
    authz_config_ref: LocalObjectReference | None = None
    """An MCPAuthzConfig with the Cedar policies (instead of ``authzConfig``); hot-reloaded too."""


class BackendAuthConfig(CRDModel):
    """How the gateway authenticates to one backend."""

    type: Literal["discovered", "externalAuthConfigRef", "unauthenticated"]
    """``discovered`` uses the backend's own ``externalAuthConfigRef``; ``externalAuthConfigRef``
    uses the one named here; ``unauthenticated`` sends no credential."""
    external_auth_config_ref: LocalObjectReference | None = None
    """The MCPExternalAuthConfig to use; required when ``type`` is ``externalAuthConfigRef``."""


class OutgoingAuth(CRDModel):
    """How the gateway authenticates to its backends. The client's token is never forwarded."""

    source: Literal["discovered", "inline"] = "discovered"
    """``discovered`` reads each backend's ``externalAuthConfigRef``; ``inline`` uses only this block."""
    default: BackendAuthConfig | None = None
    """Applies to backends without an entry in ``backends``."""
    backends: dict[str, BackendAuthConfig] | None = None
    """Per backend (keyed by the member's name): overrides ``default``."""


class ConflictResolutionConfig(CRDModel):
    """Settings of the conflict resolution strategies."""

    prefix_format: str = Field(default=DEFAULT_PREFIX_FORMAT, min_length=1)
    """For ``prefix``: how a backend's tool names are prefixed; must contain ``{workload}``, which is
    replaced by the backend's name (``{workload}_`` turns ``fetch`` into ``web_fetch``)."""
    priority_order: list[str] | None = None
    """For ``priority``: backend names, highest priority first; the first backend offering a name
    wins."""


class WorkloadToolConfig(CRDModel):
    """Tool filter and overrides of one backend."""

    workload: str = Field(min_length=1)
    """Name of the backend (the MCPServer or MCPRemoteProxy in the group)."""
    tool_config_ref: LocalObjectReference | None = None
    """An MCPToolConfig to apply to this backend (instead of ``filter`` and ``overrides``)."""
    filter: list[str] | None = None
    """Allow-list of this backend's tool names; unset exposes every tool."""
    overrides: dict[str, ToolOverride] | None = None
    """Per tool (keyed by its original name): a new name, description or annotations. With
    ``conflictResolution: manual`` these renames are how conflicts are resolved."""
    exclude_all: bool = False
    """Hide every tool of this backend."""


class Aggregation(CRDModel):
    """How the backends' tools, resources and prompts are merged into one list."""

    conflict_resolution: Literal["prefix", "priority", "manual"] = "prefix"
    """How two backends offering the same name are reconciled: ``prefix`` every name with its
    backend, ``priority`` (the first backend in ``priorityOrder`` wins) or ``manual`` (every clash is
    renamed in ``tools[].overrides``)."""
    conflict_resolution_config: ConflictResolutionConfig = Field(
        default_factory=ConflictResolutionConfig, json_schema_extra=_EMPTY_OBJECT_DEFAULT
    )
    """Settings of the chosen strategy."""
    tools: list[WorkloadToolConfig] | None = None
    """Per-backend filters and overrides, applied before conflict resolution."""
    exclude_all_tools: bool = False
    """Hide every backend tool."""
    default_tool_visibility: Literal["allow", "deny"] = "allow"
    """Whether backends without a ``tools`` entry contribute their tools (``allow``) or none
    (``deny``)."""


class Timeouts(CRDModel):
    """Per-request timeouts towards the backends."""

    default: Duration = "30s"
    """Timeout of a request to any backend, e.g. ``30s``."""
    per_workload: dict[str, Duration] | None = None
    """Per backend name: its own timeout."""


class CircuitBreaker(CRDModel):
    """Per-backend circuit breaker: refuse calls at once after repeated failures, then try again."""

    enabled: bool = False
    """Whether the circuit breaker is on."""
    failure_threshold: int = Field(default=5, json_schema_extra={"format": "int32"})
    """Consecutive failures that open the circuit (at least 1)."""
    timeout: Duration = "60s"
    """How long the circuit stays open before a half-open trial, e.g. ``60s``."""


class FailureHandling(CRDModel):
    """How the gateway watches its backends and what it does while some are down."""

    health_check_interval: Duration = "30s"
    """Time between health checks of each backend, e.g. ``30s``."""
    health_check_timeout: Duration = "10s"
    """Deadline of one health check, e.g. ``10s``."""
    unhealthy_threshold: int = Field(default=3, json_schema_extra={"format": "int32"})
    """Consecutive failures after which a backend is unhealthy and its tools leave the list (at least 1)."""
    partial_failure_mode: Literal["fail", "best_effort"] = "fail"
    """While a backend is unavailable: ``fail`` answers list requests with an error naming it;
    ``best_effort`` lists the other backends."""
    circuit_breaker: CircuitBreaker | None = None
    """The circuit breaker (off when unset)."""


class OperationalConfig(CRDModel):
    """Runtime behaviour of the gateway."""

    log_level: Literal["debug"] | None = None
    """``debug`` makes the gateway log at debug level (ToolHive's only value); unset logs at info."""

    timeouts: Timeouts = Field(default_factory=Timeouts, json_schema_extra=_EMPTY_OBJECT_DEFAULT)
    """Backend request timeouts."""
    failure_handling: FailureHandling | None = None
    """Health checks, circuit breaker and partial-failure mode (ToolHive's defaults when unset)."""


EmbeddingHeaderValue = Annotated[
    str, Field(min_length=1, max_length=8192, pattern=r"^[^\x00-\x08\x0A-\x1F\x7F]*$")
]
"""An embedding request header's value: 1 to 8192 characters, no control character but tab."""
_RATIO = r"^([0-9]*[.])?[0-9]+$"


class Optimizer(CRDModel):
    """The tool optimizer: the gateway lists only ``find_tool`` (a search of the merged tools) and
    ``call_tool`` (runs one of them), instead of every tool. ``find_tool`` ranks by keywords (BM25) and,
    with an ``embeddingService``, also by meaning (semantic search, docs/vmcp.md)."""

    embedding_service: str | None = None
    """Base URL of the embedding service of semantic search, e.g.
    ``http://embeddings.default.svc.cluster.local:8080`` (TEI; the gateway posts to ``/embed``) or
    ``https://api.openai.com/v1`` (openai; ``/embeddings`` is appended). Unset: keywords only. Loopback,
    link-local, cloud metadata and API server addresses are refused."""
    embedding_service_timeout: Duration = "30s"
    """Deadline of the embedding service's answers, e.g. ``15s``; a slower service leaves ``find_tool`` to
    the keywords (default 30s)."""
    embedding_provider: Literal["tei", "openai"] = "tei"
    """The embedding service's API: ``tei`` (Hugging Face Text Embeddings Inference, ``POST /embed``) or
    ``openai`` (an OpenAI-compatible ``POST /embeddings``, with ``embeddingModel``; its key is read from
    the gateway's ``OPENAI_API_KEY`` environment variable, e.g. from a Secret through ``podTemplateSpec``)."""
    embedding_model: str | None = Field(default=None, max_length=256)
    """The model asked of an ``openai`` service, e.g. ``text-embedding-3-small`` (required there); a TEI
    service embeds with the model it runs, so ``tei`` ignores it."""
    embedding_headers: dict[str, EmbeddingHeaderValue] | None = Field(default=None, max_length=32)
    """Extra headers of every embedding request (``openai`` only; at most 32), e.g. a gateway's cache key.
    Plain text in the gateway's ConfigMap: credentials are refused (the key goes in ``OPENAI_API_KEY``)."""
    max_tools_to_return: int | None = Field(default=None, json_schema_extra={"format": "int32"})
    """Most tools one ``find_tool`` answer lists, 1 to 50 (default 8)."""
    hybrid_search_semantic_ratio: str | None = Field(default=None, pattern=_RATIO)
    """The share of ``find_tool``'s answer given to semantic matches, 0.0 (keywords only) to 1.0
    (semantic only), as a string, e.g. ``"0.7"`` (default ``"0.5"``); the keyword matches fill the rest."""
    semantic_distance_threshold: str | None = Field(default=None, pattern=_RATIO)
    """The largest cosine distance of a semantic match, 0.0 (identical) to 2.0 (opposite), as a string,
    e.g. ``"0.8"`` (default ``"1.0"``); farther tools are left to the keyword search."""


class CodeMode(CRDModel):
    """Code mode: the gateway adds the tool ``execute_tool_script``, which runs a Starlark script that calls
    the gateway's tools as functions (loops, conditionals, ``parallel()`` fan-out) and returns one result.
    Each inner call is authorized, filtered and audited as the caller's own ``tools/call``."""

    enabled: bool | None = None
    """Turns code mode on; off when unset or false."""
    step_limit: int | None = Field(default=None, json_schema_extra={"format": "int64"})
    """Most interpreter steps of one script, at least 1 (default 100000)."""
    parallel_max_concurrency: int | None = Field(default=None, json_schema_extra={"format": "int32"})
    """Branches of one ``parallel()`` running at once, 1 to 100 (default 10)."""
    tool_call_timeout: Duration | None = None
    """Deadline of each tool call a script makes, above zero (default 30s)."""


class GatewayAudit(CRDModel):
    """ToolHive's audit settings of the gateway, mapped onto its audit line of each tool call (docs/vmcp.md).
    Not mapped, so refused: ``includeResponseData``, ``detectApplicationErrors: false`` (here always),
    ``eventTypes``, ``excludeEventTypes`` and ``logFile``."""

    enabled: bool | None = None
    """``false`` turns the audit line off; unset or ``true``: on (ToolHive's gateway audits whenever the
    block is present)."""
    component: str | None = Field(default=None, max_length=253)
    """Written as each line's ``component``."""
    include_request_data: bool = False
    """Also log each call's arguments (may contain personal data)."""
    include_response_data: bool = False
    """Refused when true: the audit line holds no result."""
    detect_application_errors: bool | None = None
    """Refused when false: a JSON-RPC error answer is always audited with outcome ``error``."""
    max_data_size: int = Field(default=1024, ge=0, json_schema_extra={"format": "int32"})
    """With ``includeRequestData``: arguments longer than this many bytes (as JSON) are logged cut to it."""
    max_delegation_depth: int | None = Field(default=None, ge=1, json_schema_extra={"format": "int32"})
    """A cap on the token-exchange delegation chain recorded per line; the line records no chain, so any
    value holds."""


PassthroughHeaders = Annotated[
    list[str] | None, Field(json_schema_extra={"x-kubernetes-list-type": "atomic"})
]
"""ToolHive's ``passthroughHeaders``: an allowlist of client request header names (checked by the rules)."""


class VirtualMCPConfig(CRDModel):
    """The gateway's configuration."""

    aggregation: Aggregation = Field(default_factory=Aggregation, json_schema_extra=_EMPTY_OBJECT_DEFAULT)
    """How backends are merged."""
    operational: OperationalConfig = Field(
        default_factory=OperationalConfig, json_schema_extra=_EMPTY_OBJECT_DEFAULT
    )
    """Timeouts."""
    composite_tools: list[CompositeToolConfig] | None = None
    """Composite tools defined inline: tools of the gateway that run steps over backend tools."""
    composite_tool_refs: list[CompositeToolRef] | None = None
    """Composite tools defined by VirtualMCPCompositeToolDefinitions of this namespace."""
    rate_limiting: RateLimiting | None = None
    """Token-bucket limits on tool calls through the gateway (shared, per user, per tool)."""
    optimizer: Optimizer | None = None
    """The tool optimizer (``find_tool`` / ``call_tool`` instead of every tool); off when unset."""
    code_mode: CodeMode | None = None
    """Code mode (the tool ``execute_tool_script``); off when unset."""
    audit: GatewayAudit | None = None
    """The gateway's audit line of each tool call (it is written also without this block)."""
    passthrough_headers: PassthroughHeaders = None
    """Names of client request headers forwarded to every backend (an allowlist); ``spec.passthroughHeaders``
    takes precedence. Credentials, hop-by-hop and gateway-owned headers are refused."""
    telemetry: InlineTelemetry | None = None
    """The gateway's own OpenTelemetry settings (ToolHive's flat form); ``spec.telemetryConfigRef`` shares
    one MCPTelemetryConfig between workloads instead. Not both."""


class VirtualMCPServerSpec(CRDModel):
    """Desired state of a VirtualMCPServer."""

    group_ref: LocalObjectReference
    """The MCPGroup whose members become the gateway's backends."""
    incoming_auth: IncomingAuth
    """How clients authenticate to the gateway (``type: anonymous`` to accept everyone)."""
    outgoing_auth: OutgoingAuth | None = None
    """How the gateway authenticates to the backends."""
    config: VirtualMCPConfig = Field(
        default_factory=VirtualMCPConfig, json_schema_extra=_EMPTY_OBJECT_DEFAULT
    )
    """Aggregation and timeouts."""
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    """Type of the gateway's Service."""
    session_affinity: SessionAffinity | None = None
    """``ClientIP`` makes the Service send a client's connections to one gateway pod; ``None`` or unset:
    the Service's default, no affinity."""
    replicas: int | None = Field(default=None, ge=0, json_schema_extra={"format": "int32"})
    """Replicas of the gateway Deployment. Unset leaves the count to whoever scales it (an HPA)."""
    session_storage: SessionStorage | None = None
    """Where client sessions live: ``memory`` (each pod) or ``redis`` (shared by every replica)."""
    pod_disruption_budget: PodDisruptionBudgetSpec | None = None
    """A PodDisruptionBudget over the gateway pods (``minAvailable`` or ``maxUnavailable``); removing the
    field deletes it."""
    service_account: str | None = Field(default=None, min_length=1)
    """An existing ServiceAccount for the gateway pods; by default the operator creates one."""
    resources: ResourceRequirements | None = None
    """Compute resources of the gateway container."""
    pod_template_spec: PodTemplateSpec | None = None
    """A partial PodTemplateSpec merged into the gateway pod (the container is named ``vmcp``)."""
    telemetry_config_ref: MCPTelemetryConfigReference | None = None
    """An MCPTelemetryConfig: where the gateway sends its OpenTelemetry traces (and its service name)."""
    embedding_server_ref: LocalObjectReference | None = None
    """An EmbeddingServer of this namespace: the optimizer is on (``spec.config.optimizer``, its defaults
    when unset) with the EmbeddingServer's URL as its embedding service (the TEI API). The gateway is
    deployed, or its config changed, only once the EmbeddingServer is Ready."""
    passthrough_headers: PassthroughHeaders = None
    """Names of client request headers forwarded verbatim to every backend (an allowlist, e.g. an API key a
    backend resolves to a user); takes precedence over ``spec.config.passthroughHeaders``. Credentials
    (``Authorization``, ``Cookie``), hop-by-hop headers, ``Host``, ``X-Forwarded-*`` and the headers the
    gateway sets itself are refused. A forwarded header is whatever the client sent: trust it only when a
    trusted front sets it."""
    image_pull_secrets: Annotated[
        list[LocalObjectReference] | None, Field(json_schema_extra={"x-kubernetes-list-type": "atomic"})
    ] = None
    """Image pull secrets of the gateway pods, also set on the ServiceAccount the operator creates for
    them. The pods get the union of these and ``spec.podTemplateSpec.spec.imagePullSecrets`` (by name;
    the template's entry wins); only these reach the ServiceAccount."""


class BackendStatus(CRDModel):
    """One backend as the gateway sees it."""

    name: ResourceName
    """Name of the member (MCPServer, MCPRemoteProxy or MCPServerEntry)."""
    kind: Literal["MCPServer", "MCPRemoteProxy", "MCPServerEntry"] | None = None
    """Kind of the member."""
    url: str | None = None
    """URL the gateway connects to."""
    status: Literal["ready", "unavailable", "degraded", "unknown", "unauthenticated"] = "unknown"
    """Health of the backend."""
    message: str | None = None
    """Why the backend is not ready."""
    last_health_check: str | None = Field(default=None, json_schema_extra={"format": "date-time"})
    """RFC 3339 time of the last health check."""
    circuit_breaker_state: Literal["closed", "open", "half-open"] | None = None
    """The backend's circuit (absent while the circuit breaker is disabled)."""
    circuit_last_changed: str | None = Field(default=None, json_schema_extra={"format": "date-time"})
    """RFC 3339 time the circuit last changed state."""
    consecutive_failures: int | None = Field(default=None, ge=0, json_schema_extra={"format": "int32"})
    """Consecutive failed health checks, connects or calls; absent once the backend answers again."""


class VirtualMCPServerStatus(WorkloadStatus):
    """Observed state of a VirtualMCPServer."""

    phase: VirtualMCPServerPhase | None = None
    """Summary of the state: Pending, Ready, Degraded (some backends down) or Failed."""
    backend_count: int = Field(default=0, ge=0, json_schema_extra={"format": "int32"})
    """Backends that can serve requests."""
    authz_config_hash: str | None = None
    """Hash of the referenced MCPAuthzConfig whose policies the gateway enforces."""
    telemetry_config_hash: str | None = None
    """Hash of the referenced MCPTelemetryConfig that the running gateway uses."""
    discovered_backends: Annotated[
        list[BackendStatus],
        BeforeValidator(lambda value: [] if value is None else value),
        Field(
            json_schema_extra={
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                # A server-side apply that removes the last item stores the list as null (Kubernetes
                # v1.20); without this the API server refuses that status write, on every reconcile.
                "nullable": True,
            }
        ),
    ] = Field(default_factory=list)
    """Every member of the group and its health."""
    oidc_config_hash: str | None = None
    """Hash of the referenced MCPOIDCConfig that the running gateway uses."""


class VirtualMCPServer(CustomResource):
    """A gateway that aggregates the members of an MCPGroup behind one MCP endpoint."""

    KIND: ClassVar[str] = "VirtualMCPServer"

    kind: Literal["VirtualMCPServer"] = "VirtualMCPServer"
    """``VirtualMCPServer``."""
    spec: VirtualMCPServerSpec
    """Desired state."""
    status: VirtualMCPServerStatus = Field(default_factory=VirtualMCPServerStatus)
    """Observed state, written by the operator."""
