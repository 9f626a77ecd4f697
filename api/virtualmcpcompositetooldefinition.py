"""VirtualMCPCompositeToolDefinition: a composite tool that VirtualMCPServers of its namespace reference."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from api.base import CRDModel
from api.composite import CompositeToolConfig
from api.conditions import Conditions
from api.resource import CustomResource

__all__ = [
    "WORKFLOW_VALIDATED",
    "VirtualMCPCompositeToolDefinition",
    "VirtualMCPCompositeToolDefinitionStatus",
]

WORKFLOW_VALIDATED = "WorkflowValidated"
"""ToolHive's condition: the workflow (step graph, templates, durations) is valid."""


class VirtualMCPCompositeToolDefinitionStatus(CRDModel):
    """Observed state of a VirtualMCPCompositeToolDefinition."""

    validation_status: Literal["Valid", "Invalid", "Unknown"] | None = None
    """Whether the workflow is valid."""
    validation_errors: list[str] | None = None
    """What is wrong with it (each names the field and the fix)."""
    referencing_virtual_servers: list[str] | None = Field(
        default=None, json_schema_extra={"x-kubernetes-list-type": "set"}
    )
    """VirtualMCPServers of this namespace that reference it."""
    observed_generation: int | None = Field(default=None, ge=0, json_schema_extra={"format": "int64"})
    """The ``metadata.generation`` this status was computed from."""
    conditions: Conditions = Field(default_factory=list)
    """``Accepted`` and ``WorkflowValidated`` (reasons ``ValidationSuccess``, ``ValidationFailed``,
    ``DependencyCycle``, ``TemplateInvalid``, ``SchemaInvalid``)."""


class VirtualMCPCompositeToolDefinition(CustomResource):
    """A composite tool (a workflow over backend tools) that VirtualMCPServers reference."""

    KIND: ClassVar[str] = "VirtualMCPCompositeToolDefinition"

    kind: Literal["VirtualMCPCompositeToolDefinition"] = "VirtualMCPCompositeToolDefinition"
    """``VirtualMCPCompositeToolDefinition``."""
    spec: CompositeToolConfig
    """The composite tool."""
    status: VirtualMCPCompositeToolDefinitionStatus = Field(
        default_factory=VirtualMCPCompositeToolDefinitionStatus
    )
    """Observed state, written by the operator."""
