"""MCPRemoteProxy: the operator's proxy in front of an MCP server outside the cluster."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from api.base import Port
from api.common import (
    HTTP_URL_PATTERN,
    AuditConfig,
    HeaderForward,
    LocalObjectReference,
    PodTemplateSpec,
    ProxyEndpoint,
    ProxyStatus,
    ResourceOverrides,
    ResourceRequirements,
)
from api.embedded_auth import AuthServerRef
from api.mcptelemetryconfig import MCPTelemetryConfigReference
from api.resource import CustomResource
from api.scaling import PodDisruptionBudgetSpec, SessionStorage

__all__ = ["MCPRemoteProxy", "MCPRemoteProxyPhase", "MCPRemoteProxySpec", "MCPRemoteProxyStatus"]

MCPRemoteProxyPhase = Literal["Pending", "Ready", "Failed", "Terminating"]


class MCPRemoteProxySpec(ProxyEndpoint):
    """Desired state of an MCPRemoteProxy."""

    remote_url: str = Field(pattern=HTTP_URL_PATTERN)
    """URL of the remote MCP server, e.g. ``https://mcp.example.com/mcp``. Private, loopback and
    link-local addresses are refused unless ``allowPrivateEndpoint`` is true (loopback and link-local
    always)."""
    transport: Literal["sse", "streamable-http"] = "streamable-http"
    """Protocol the remote server speaks."""
    proxy_port: Port = 8080
    """Port of the proxy and of the Service clients connect to."""
    allow_private_endpoint: bool = False
    """Allow a remote URL in a private network range or ``*.cluster.local``."""
    header_forward: HeaderForward | None = None
    """Extra headers sent to the remote server (plain or from Secrets)."""
    auth_server_ref: AuthServerRef | None = None
    """An MCPExternalAuthConfig of type ``embeddedAuthServer``: the proxy becomes the OAuth 2.1
    authorization server of its endpoint, signing users in at the configured upstream identity provider
    (docs/auth.md); it authenticates callers itself, so ``oidcConfig`` / ``oidcConfigRef`` stay unset."""
    external_auth_config_ref: LocalObjectReference | None = None
    """An MCPExternalAuthConfig describing how the proxy authenticates to the remote server. The
    client's own token is never forwarded upstream."""
    audit: AuditConfig | None = None
    """Audit logging of MCP calls."""
    tool_config_ref: LocalObjectReference | None = None
    """An MCPToolConfig that filters and renames the remote server's tools."""
    telemetry_config_ref: MCPTelemetryConfigReference | None = None
    """An MCPTelemetryConfig: where the proxy sends its OpenTelemetry traces (and its service name)."""
    group_ref: LocalObjectReference | None = None
    """The MCPGroup this proxy belongs to (VirtualMCPServers aggregate a group's members)."""
    resources: ResourceRequirements | None = None
    """Compute resources of the proxy container."""
    replicas: int | None = Field(default=None, ge=0, json_schema_extra={"format": "int32"})
    """Replicas of the proxy Deployment. Unset leaves the count to whoever scales it (an HPA)."""
    session_storage: SessionStorage | None = None
    """Where client sessions live: ``memory`` (each pod) or ``redis`` (shared by every replica)."""
    pod_disruption_budget: PodDisruptionBudgetSpec | None = None
    """A PodDisruptionBudget over the proxy pods (``minAvailable`` or ``maxUnavailable``); removing the
    field deletes it."""
    service_account: str | None = Field(default=None, min_length=1)
    """An existing ServiceAccount for the proxy pods; by default the operator creates one."""
    pod_template_spec: PodTemplateSpec | None = None
    """A partial PodTemplateSpec merged into the proxy pod (the proxy container is named ``proxy``)."""
    resource_overrides: ResourceOverrides | None = None
    """Labels, annotations, env and pull secrets added to the proxy Deployment and Service."""


class MCPRemoteProxyStatus(ProxyStatus):
    """Observed state of an MCPRemoteProxy."""

    phase: MCPRemoteProxyPhase | None = None
    """Summary of the state: Pending, Ready, Failed or Terminating."""


class MCPRemoteProxy(CustomResource):
    """The operator's proxy in front of an MCP server outside the cluster."""

    KIND: ClassVar[str] = "MCPRemoteProxy"

    kind: Literal["MCPRemoteProxy"] = "MCPRemoteProxy"
    """``MCPRemoteProxy``."""
    spec: MCPRemoteProxySpec
    """Desired state."""
    status: MCPRemoteProxyStatus = Field(default_factory=MCPRemoteProxyStatus)
    """Observed state, written by the operator."""
