"""MCPToolConfig: a reusable tool filter and rename list referenced by the workload kinds."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from api.base import CRDModel
from api.common import ToolOverride
from api.conditions import Conditions
from api.resource import CustomResource

__all__ = ["ConfigStatus", "MCPToolConfig", "MCPToolConfigSpec"]


class MCPToolConfigSpec(CRDModel):
    """Which tools a server exposes and how they are presented."""

    tools_filter: list[str] | None = None
    """Allow-list of tool names (original names, before renaming). Unset or empty exposes every tool."""
    tools_override: dict[str, ToolOverride] | None = None
    """Per tool (keyed by its original name): a new name, description or annotations."""


class ConfigStatus(CRDModel):
    """Observed state of a configuration kind (MCPToolConfig, MCPExternalAuthConfig)."""

    observed_generation: int | None = Field(default=None, ge=0, json_schema_extra={"format": "int64"})
    """The ``metadata.generation`` this status was computed from."""
    conditions: Conditions = Field(default_factory=list)
    """Current conditions (``Accepted`` = the configuration is valid)."""
    config_hash: str | None = None
    """Hash of the spec; workloads copy it into their status, and a change rolls their pods."""


class MCPToolConfig(CustomResource):
    """A reusable tool filter and rename list."""

    KIND: ClassVar[str] = "MCPToolConfig"

    kind: Literal["MCPToolConfig"] = "MCPToolConfig"
    """``MCPToolConfig``."""
    spec: MCPToolConfigSpec = Field(default_factory=MCPToolConfigSpec)
    """Desired state."""
    status: ConfigStatus = Field(default_factory=ConfigStatus)
    """Observed state, written by the operator."""
