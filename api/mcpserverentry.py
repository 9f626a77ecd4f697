"""MCPServerEntry: a remote MCP server registered into an MCPGroup, without a pod of its own.

The VirtualMCPServers of the group connect straight to ``spec.remoteUrl`` (with the SSRF guard and the
outbound credentials described here); nothing is deployed for the entry itself.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from api.base import CRDModel
from api.common import HTTP_URL_PATTERN, CABundleSource, ConfigMapKeyRef, HeaderForward, LocalObjectReference
from api.conditions import Conditions
from api.resource import CustomResource

__all__ = [
    "CABundleSource",
    "ConfigMapKeyRef",
    "MCPServerEntry",
    "MCPServerEntryPhase",
    "MCPServerEntrySpec",
    "MCPServerEntryStatus",
]

MCPServerEntryPhase = Literal["Valid", "Pending", "Failed"]


class MCPServerEntrySpec(CRDModel):
    """Desired state of an MCPServerEntry."""

    remote_url: str = Field(pattern=HTTP_URL_PATTERN)
    """URL of the remote MCP server, e.g. ``https://mcp.example.com/mcp``. Loopback, link-local, cloud
    metadata and the API server are refused; private addresses and in-cluster names unless
    ``allowPrivateEndpoint`` is true. The gateway checks what the name resolves to before each connect."""
    allow_private_endpoint: bool = False
    """Allow a remote URL in a private network range or ``*.cluster.local``."""
    transport: Literal["sse", "streamable-http"]
    """Protocol the remote server speaks (required: the server is not one this cluster runs)."""
    group_ref: LocalObjectReference
    """The MCPGroup this entry belongs to; the group's VirtualMCPServers route to it."""
    external_auth_config_ref: LocalObjectReference | None = None
    """An MCPExternalAuthConfig describing how the gateway authenticates to the remote server. The
    client's own token is never forwarded."""
    header_forward: HeaderForward | None = None
    """Extra headers the gateway sends to the remote server (plain or from Secrets)."""
    ca_bundle_ref: CABundleSource | None = None
    """The CAs that verify the remote server's TLS certificate instead of the system CAs (a private CA).
    The gateway routes to the entry only while the ConfigMap key holds valid PEM certificates; a change
    reaches the gateways without a restart."""


class MCPServerEntryStatus(CRDModel):
    """Observed state of an MCPServerEntry."""

    observed_generation: int | None = Field(default=None, ge=0, json_schema_extra={"format": "int64"})
    """The ``metadata.generation`` this status was computed from."""
    phase: MCPServerEntryPhase | None = None
    """``Valid`` (the gateways of its group route to it), ``Pending`` (a referenced object is missing)
    or ``Failed`` (the spec is invalid)."""
    message: str | None = None
    """Human-readable detail of the phase."""
    conditions: Conditions = Field(default_factory=list)
    """Current conditions (``Accepted``, ``ResolvedRefs``, ``InUse``)."""


class MCPServerEntry(CustomResource):
    """A remote MCP server registered into an MCPGroup without a pod: gateways route to it directly."""

    KIND: ClassVar[str] = "MCPServerEntry"

    kind: Literal["MCPServerEntry"] = "MCPServerEntry"
    """``MCPServerEntry``."""
    spec: MCPServerEntrySpec
    """Desired state."""
    status: MCPServerEntryStatus = Field(default_factory=MCPServerEntryStatus)
    """Observed state, written by the operator."""
