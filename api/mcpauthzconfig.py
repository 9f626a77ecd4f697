"""MCPAuthzConfig: Cedar authorization policies shared by workloads (``authzConfigRef``), ToolHive's kind."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from api.base import CRDModel
from api.mcptoolconfig import ConfigStatus
from api.resource import CustomResource

__all__ = ["MCPAuthzConfig", "MCPAuthzConfigSpec"]


class MCPAuthzConfigSpec(CRDModel):
    """Which authorizer, and its configuration."""

    type: Literal["cedarv1"] = "cedarv1"
    """The authorizer: ``cedarv1`` (Cedar policies; ToolHive's ``httpv1`` is not supported)."""
    config: Annotated[dict[str, Any], Field(json_schema_extra={"x-kubernetes-preserve-unknown-fields": True})]
    """ToolHive's Cedar options: ``policies`` (Cedar policy texts, at least one), ``entities_json``,
    ``group_claim_name``, ``role_claim_name``, ``group_entity_type``."""


class MCPAuthzConfig(CustomResource):
    """Cedar authorization policies shared by workloads."""

    KIND: ClassVar[str] = "MCPAuthzConfig"

    kind: Literal["MCPAuthzConfig"] = "MCPAuthzConfig"
    """``MCPAuthzConfig``."""
    spec: MCPAuthzConfigSpec
    """Desired state."""
    status: ConfigStatus = Field(default_factory=ConfigStatus)
    """Observed state, written by the operator."""
