"""MCPGroup: a named set of MCPServers, MCPRemoteProxies and MCPServerEntries (members point at it with
``spec.groupRef``)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from api.base import CRDModel
from api.conditions import Conditions
from api.resource import CustomResource

__all__ = ["MCPGroup", "MCPGroupPhase", "MCPGroupSpec", "MCPGroupStatus"]

MCPGroupPhase = Literal["Pending", "Ready", "Failed"]


class MCPGroupSpec(CRDModel):
    """Desired state of an MCPGroup."""

    description: str | None = None
    """What the servers of this group are for."""


class MCPGroupStatus(CRDModel):
    """Observed state of an MCPGroup: its members."""

    phase: MCPGroupPhase | None = None
    """Summary of the state: Pending, Ready or Failed."""
    message: str | None = None
    """Human-readable detail of the phase."""
    servers: list[str] = Field(default_factory=list)
    """Names of the MCPServers whose ``spec.groupRef`` names this group, sorted."""
    server_count: int = Field(default=0, ge=0, json_schema_extra={"format": "int32"})
    """Number of member MCPServers."""
    remote_proxies: list[str] = Field(default_factory=list)
    """Names of the MCPRemoteProxies whose ``spec.groupRef`` names this group, sorted."""
    remote_proxy_count: int = Field(default=0, ge=0, json_schema_extra={"format": "int32"})
    """Number of member MCPRemoteProxies."""
    entries: list[str] = Field(default_factory=list)
    """Names of the MCPServerEntries whose ``spec.groupRef`` names this group, sorted."""
    entry_count: int = Field(default=0, ge=0, json_schema_extra={"format": "int32"})
    """Number of member MCPServerEntries."""
    observed_generation: int | None = Field(default=None, ge=0, json_schema_extra={"format": "int64"})
    """The ``metadata.generation`` this status was computed from."""
    conditions: Conditions = Field(default_factory=list)
    """Current conditions (``Accepted``, ``Ready``)."""


class MCPGroup(CustomResource):
    """A named set of MCP servers and remote proxies, aggregated by VirtualMCPServers."""

    KIND: ClassVar[str] = "MCPGroup"

    kind: Literal["MCPGroup"] = "MCPGroup"
    """``MCPGroup``."""
    spec: MCPGroupSpec = Field(default_factory=MCPGroupSpec)
    """Desired state."""
    status: MCPGroupStatus = Field(default_factory=MCPGroupStatus)
    """Observed state, written by the operator."""
