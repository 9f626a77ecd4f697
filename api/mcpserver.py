"""MCPServer: an MCP server run from a container image in the cluster, behind the operator's proxy."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from api.base import CRDModel, Port
from api.common import (
    AuditConfig,
    EnvVar,
    LocalObjectReference,
    PodTemplateSpec,
    ProxyEndpoint,
    ProxyStatus,
    ResourceOverrides,
    ResourceRequirements,
    SecretEnv,
)
from api.embedded_auth import AuthServerRef
from api.mcptelemetryconfig import MCPTelemetryConfigReference
from api.resource import CustomResource
from api.scaling import PodDisruptionBudgetSpec, RateLimiting, SessionStorage

__all__ = [
    "BUILTIN_PROFILES",
    "MCPServer",
    "MCPServerPhase",
    "MCPServerSpec",
    "MCPServerStatus",
    "PermissionProfileRef",
    "Transport",
    "Volume",
]

Transport = Literal["stdio", "sse", "streamable-http"]
MCPServerPhase = Literal["Pending", "Running", "Failed", "Terminating", "Stopped"]


class Volume(CRDModel):
    """A host directory mounted into the MCP server container (ToolHive's volume shape)."""

    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    """Name of the volume in the pod (a DNS label, unique among the pod's volumes)."""
    host_path: str = Field(min_length=1, pattern=r"^/")
    """Absolute path on the node. A namespace that enforces the ``baseline`` or ``restricted`` Pod
    Security Standard refuses hostPath volumes."""
    mount_path: str = Field(min_length=1, pattern=r"^/")
    """Absolute path in the MCP server container."""
    read_only: bool = False
    """Mount it read-only."""


BUILTIN_PROFILES = ("none", "network")
"""ToolHive's builtin permission profiles: no network egress, or egress allowed."""


class PermissionProfileRef(CRDModel):
    """Which permission profile the MCP server runs with (ToolHive's shape)."""

    type: Literal["builtin", "configmap"] = "builtin"
    """``builtin`` (a profile named by ``name``) or ``configmap`` (a profile stored in a ConfigMap; not
    supported yet)."""
    name: str = Field(min_length=1)
    """For ``builtin``: ``none`` (no network egress: a NetworkPolicy denies all of the server pods'
    outbound traffic) or ``network`` (outbound traffic allowed). For ``configmap``: the ConfigMap."""
    key: str | None = None
    """For ``configmap``: the key holding the profile."""


class MCPServerSpec(ProxyEndpoint):
    """Desired state of an MCPServer."""

    image: str = Field(min_length=1)
    """Container image of the MCP server, e.g. ``ghcr.io/example/fetch:1.2``."""
    transport: Transport = "stdio"
    """How the server speaks MCP: ``stdio`` (over stdin/stdout; one replica), ``sse`` or
    ``streamable-http`` (over HTTP on ``mcpPort``)."""
    proxy_mode: Literal["sse", "streamable-http"] = "streamable-http"
    """Which endpoint ``status.url`` points at for a stdio server: ``/mcp`` (``streamable-http``) or
    ``/sse`` (``sse``). The proxy serves both in any case."""
    proxy_port: Port = 8080
    """Port of the proxy and of the Service clients connect to."""
    mcp_port: Port | None = None
    """Port the MCP server listens on for ``sse`` and ``streamable-http`` (default 8080). Not used by
    ``stdio``."""
    args: list[str] | None = None
    """Arguments passed to the MCP server container."""
    env: Annotated[
        list[EnvVar] | None,
        Field(json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}),
    ] = None
    """Environment variables of the MCP server container."""
    volumes: Annotated[
        list[Volume] | None,
        Field(json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}),
    ] = None
    """Host directories mounted into the MCP server container (``podTemplateSpec`` takes any other
    kind of volume)."""
    secrets: list[SecretEnv] | None = None
    """Secret keys exposed to the MCP server container as environment variables."""
    resources: ResourceRequirements | None = None
    """Compute resources of the MCP server container."""
    proxy_resources: ResourceRequirements | None = None
    """Compute resources of the proxy container."""
    permission_profile: PermissionProfileRef | None = None
    """What the MCP server may reach: ``{type: builtin, name: none}`` renders a NetworkPolicy denying
    the server pods all egress (enforced only by a network plugin that enforces NetworkPolicy); unset
    or ``network`` allows it."""
    pod_template_spec: PodTemplateSpec | None = None
    """A partial PodTemplateSpec merged into the MCP server's pod (the server container is named
    ``mcp``): node selectors, tolerations, security contexts, volumes, sidecars."""
    replicas: int | None = Field(default=None, ge=0, json_schema_extra={"format": "int32"})
    """Replicas of the proxy Deployment. Unset leaves the count to whoever scales it (an HPA); 0 stops
    the server."""
    backend_replicas: int | None = Field(default=None, ge=0, json_schema_extra={"format": "int32"})
    """Replicas of the MCP server StatefulSet for HTTP transports (stdio always runs exactly one)."""
    session_storage: SessionStorage | None = None
    """Where client sessions live: ``memory`` (each pod) or ``redis`` (shared by every replica)."""
    pod_disruption_budget: PodDisruptionBudgetSpec | None = None
    """A PodDisruptionBudget over the proxy pods (``minAvailable`` or ``maxUnavailable``); removing the
    field deletes it. Refused on a stdio server (one pod)."""
    rate_limiting: RateLimiting | None = None
    """Token-bucket limits on tool calls (shared, per user, per tool); shared by the replicas through
    Redis with ``sessionStorage.provider: redis``, else per pod."""
    service_account: str | None = Field(default=None, min_length=1)
    """An existing ServiceAccount for the MCP server pod; by default the operator creates
    ``<name>-server`` without an API token."""
    tool_config_ref: LocalObjectReference | None = None
    """An MCPToolConfig that filters and renames the server's tools."""
    telemetry_config_ref: MCPTelemetryConfigReference | None = None
    """An MCPTelemetryConfig: where the proxy sends its OpenTelemetry traces (and its service name)."""
    group_ref: LocalObjectReference | None = None
    """The MCPGroup this server belongs to (VirtualMCPServers aggregate a group's members)."""
    audit: AuditConfig | None = None
    """Audit logging of MCP calls."""
    auth_server_ref: AuthServerRef | None = None
    """An MCPExternalAuthConfig of type ``embeddedAuthServer``: the proxy becomes the OAuth 2.1
    authorization server of its endpoint, signing users in at the configured upstream identity provider
    (docs/auth.md); it authenticates callers itself, so ``oidcConfig`` / ``oidcConfigRef`` stay unset."""
    external_auth_config_ref: LocalObjectReference | None = None
    """An MCPExternalAuthConfig describing how the proxy authenticates to the server (sse and
    streamable-http transports; a stdio server has no HTTP hop and refuses it). Secret values reach the
    proxy as environment variables, never through its ConfigMap."""
    resource_overrides: ResourceOverrides | None = None
    """Labels, annotations, env and pull secrets added to the proxy Deployment and Service."""


class MCPServerStatus(ProxyStatus):
    """Observed state of an MCPServer."""

    phase: MCPServerPhase | None = None
    """Summary of the state: Pending, Running, Failed, Terminating or Stopped."""


class MCPServer(CustomResource):
    """An MCP server run from a container image inside the cluster, behind the operator's proxy."""

    KIND: ClassVar[str] = "MCPServer"

    kind: Literal["MCPServer"] = "MCPServer"
    """``MCPServer``."""
    spec: MCPServerSpec
    """Desired state."""
    status: MCPServerStatus = Field(default_factory=MCPServerStatus)
    """Observed state, written by the operator."""
