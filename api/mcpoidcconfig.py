"""MCPOIDCConfig: an identity provider shared by the workloads that accept its tokens.

A workload refers to it with ``oidcConfigRef`` (``spec.incomingAuth.oidcConfigRef`` for a
VirtualMCPServer) and adds what is its own: the audience, the advertised scopes and its public URL.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import BeforeValidator, Field

from api.base import CRDModel, ResourceName
from api.common import InlineOIDCSharedConfig, KubernetesServiceAccountOIDCConfig
from api.mcptoolconfig import ConfigStatus
from api.resource import CustomResource

__all__ = [
    "MCPOIDCConfig",
    "MCPOIDCConfigSpec",
    "ReferencedConfigStatus",
    "WorkloadKindName",
    "WorkloadReference",
]

WorkloadKindName = Literal["MCPServer", "VirtualMCPServer", "MCPRemoteProxy"]


class MCPOIDCConfigSpec(CRDModel):
    """Where the identity provider's settings come from: ``type`` selects the block."""

    type: Literal["kubernetesServiceAccount", "inline"]
    """``inline`` (an identity provider, the ``inline`` block) or ``kubernetesServiceAccount`` (the
    cluster's own service account tokens, the ``kubernetesServiceAccount`` block)."""
    kubernetes_service_account: KubernetesServiceAccountOIDCConfig | None = None
    """The service account token settings; required (``{}`` for the defaults) when ``type`` is
    ``kubernetesServiceAccount``."""
    inline: InlineOIDCSharedConfig | None = None
    """The provider settings; required when ``type`` is ``inline``."""


class WorkloadReference(CRDModel):
    """A workload that refers to a shared configuration (same namespace)."""

    kind: WorkloadKindName
    """Kind of the workload."""
    name: ResourceName
    """Name of the workload."""


class ReferencedConfigStatus(ConfigStatus):
    """Observed state of a shared configuration kind that workloads refer to."""

    referencing_workloads: Annotated[
        list[WorkloadReference],
        BeforeValidator(lambda value: [] if value is None else value),
        Field(
            json_schema_extra={
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["kind", "name"],
                # server-side apply stores an emptied list as null (Kubernetes v1.20)
                "nullable": True,
            }
        ),
    ] = Field(default_factory=list)
    """The workloads that refer to it (kind and name); while any does, deleting it waits (the
    ``DeletionBlocked`` condition names them)."""


class MCPOIDCConfig(CustomResource):
    """An OIDC identity provider shared by the workloads that refer to it with oidcConfigRef."""

    KIND: ClassVar[str] = "MCPOIDCConfig"

    kind: Literal["MCPOIDCConfig"] = "MCPOIDCConfig"
    """``MCPOIDCConfig``."""
    spec: MCPOIDCConfigSpec
    """Desired state."""
    status: ReferencedConfigStatus = Field(default_factory=ReferencedConfigStatus)
    """Observed state, written by the operator."""
