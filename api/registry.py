"""The registry of kinds: names, short names, printer columns and model of each CRD of the API group."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from api.base import API_GROUP, API_VERSION, GROUP_VERSION
from api.embeddingserver import EmbeddingServer, embedding_server_rules
from api.mcpauthzconfig import MCPAuthzConfig
from api.mcpexternalauthconfig import MCPExternalAuthConfig
from api.mcpgroup import MCPGroup
from api.mcpoidcconfig import MCPOIDCConfig
from api.mcpremoteproxy import MCPRemoteProxy
from api.mcpserver import MCPServer
from api.mcpserverentry import MCPServerEntry
from api.mcptelemetryconfig import MCPTelemetryConfig, telemetry_config_rules
from api.mcptoolconfig import MCPToolConfig
from api.problems import Problem
from api.reserved import RESERVED_FIELDS, ReservedField
from api.resource import CustomResource
from api.rules import (
    authz_config_rules,
    composite_tool_definition_rules,
    external_auth_config_rules,
    mcp_oidc_config_rules,
    mcp_remote_proxy_rules,
    mcp_server_entry_rules,
    mcp_server_rules,
    tool_config_rules,
    virtual_mcp_server_rules,
)
from api.virtualmcpcompositetooldefinition import VirtualMCPCompositeToolDefinition
from api.virtualmcpserver import VirtualMCPServer

__all__ = ["CATEGORY", "KINDS", "KindInfo", "PrinterColumn", "kind_info", "model_for"]

#: ``kubectl get mcp`` lists every kind of the group.
CATEGORY = "mcp"


@dataclass(frozen=True)
class PrinterColumn:
    """An ``additionalPrinterColumns`` entry: what ``kubectl get`` shows."""

    name: str
    json_path: str
    type: str = "string"
    description: str = ""
    priority: int = 0


def _ready(description: str = "Whether the resource is serving (the Ready condition)") -> PrinterColumn:
    return PrinterColumn("Ready", '.status.conditions[?(@.type=="Ready")].status', description=description)


_AGE = PrinterColumn("Age", ".metadata.creationTimestamp", "date")
_PHASE = PrinterColumn("Phase", ".status.phase", description="Summary of the state")
_URL = PrinterColumn("URL", ".status.url", description="URL clients use")
_VALID = PrinterColumn(
    "Valid", '.status.conditions[?(@.type=="Accepted")].status', description="Whether the spec is valid"
)


def _no_rules(spec: Any) -> list[Problem]:
    return []


@dataclass(frozen=True)
class KindInfo:
    """Everything that names one kind of the API group, and the rules its spec must follow."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    model: type[CustomResource]
    printer_columns: tuple[PrinterColumn, ...]
    rules: Callable[[Any], list[Problem]] = _no_rules
    """Cross-field rules of the spec (``api.rules``) beyond what the schema checks."""
    group: str = API_GROUP
    version: str = API_VERSION

    @property
    def reserved(self) -> tuple[ReservedField, ...]:
        """ToolHive fields not implemented yet: in the schema, refused when set (``api.reserved``)."""
        return RESERVED_FIELDS[self.kind]

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def api_version(self) -> str:
        return GROUP_VERSION

    @property
    def crd_name(self) -> str:
        """``<plural>.<group>``, the name of the CustomResourceDefinition."""
        return f"{self.plural}.{self.group}"


KINDS: dict[str, KindInfo] = {
    info.kind: info
    for info in (
        KindInfo(
            "MCPServer",
            "mcpservers",
            ("mcps",),
            MCPServer,
            (
                _PHASE,
                _ready(),
                PrinterColumn("Replicas", ".status.readyReplicas", "integer", "Proxy pods ready to serve"),
                _URL,
                _AGE,
            ),
            mcp_server_rules,
        ),
        KindInfo(
            "MCPRemoteProxy",
            "mcpremoteproxies",
            ("mcprp",),
            MCPRemoteProxy,
            (
                _PHASE,
                PrinterColumn("Remote URL", ".spec.remoteUrl", description="The remote MCP server"),
                _URL,
                _ready(),
                _AGE,
            ),
            mcp_remote_proxy_rules,
        ),
        KindInfo(
            "VirtualMCPServer",
            "virtualmcpservers",
            ("vmcp",),
            VirtualMCPServer,
            (
                _PHASE,
                PrinterColumn("Backends", ".status.backendCount", "integer", "Backends that can serve"),
                _URL,
                _ready(),
                _AGE,
            ),
            virtual_mcp_server_rules,
        ),
        KindInfo(
            "MCPGroup",
            "mcpgroups",
            ("mcpg",),
            MCPGroup,
            (
                PrinterColumn("Servers", ".status.serverCount", "integer", "Member MCPServers"),
                PrinterColumn("Proxies", ".status.remoteProxyCount", "integer", "Member MCPRemoteProxies"),
                _PHASE,
                _AGE,
            ),
        ),
        KindInfo(
            "MCPToolConfig", "mcptoolconfigs", ("mcptc",), MCPToolConfig, (_VALID, _AGE), tool_config_rules
        ),
        KindInfo(
            "MCPExternalAuthConfig",
            "mcpexternalauthconfigs",
            ("mcpeac",),
            MCPExternalAuthConfig,
            (_VALID, _AGE),
            external_auth_config_rules,
        ),
        KindInfo(
            "MCPOIDCConfig",
            "mcpoidcconfigs",
            ("mcpoidc",),
            MCPOIDCConfig,
            (PrinterColumn("Source", ".spec.type", description="Where the settings come from"), _VALID, _AGE),
            mcp_oidc_config_rules,
        ),
        KindInfo(
            "MCPServerEntry",
            "mcpserverentries",
            ("mcpentry",),
            MCPServerEntry,
            (
                _PHASE,
                PrinterColumn("Transport", ".spec.transport", description="Protocol of the remote server"),
                PrinterColumn("Remote URL", ".spec.remoteUrl", description="The remote MCP server"),
                PrinterColumn("Group", ".spec.groupRef.name", description="The MCPGroup it belongs to"),
                _AGE,
            ),
            mcp_server_entry_rules,
        ),
        KindInfo(
            "MCPAuthzConfig",
            "mcpauthzconfigs",
            ("authzcfg",),
            MCPAuthzConfig,
            (_VALID, _AGE),
            authz_config_rules,
        ),
        KindInfo(
            "MCPTelemetryConfig",
            "mcptelemetryconfigs",
            ("mcpotel",),
            MCPTelemetryConfig,
            (
                PrinterColumn("Endpoint", ".spec.openTelemetry.endpoint", description="The OTLP collector"),
                _VALID,
                PrinterColumn("Tracing", ".spec.openTelemetry.tracing.enabled", "boolean", "Tracing on"),
                _AGE,
            ),
            telemetry_config_rules,
        ),
        KindInfo(
            "VirtualMCPCompositeToolDefinition",
            "virtualmcpcompositetooldefinitions",
            ("vmcpctd", "compositetool"),
            VirtualMCPCompositeToolDefinition,
            (
                PrinterColumn("Workflow", ".spec.name", description="The composite tool's name"),
                PrinterColumn(
                    "Status", ".status.validationStatus", description="Whether the workflow is valid"
                ),
                _VALID,
                _AGE,
            ),
            composite_tool_definition_rules,
        ),
        KindInfo(
            "EmbeddingServer",
            "embeddingservers",
            ("emb", "embedding"),
            EmbeddingServer,
            (
                _PHASE,
                PrinterColumn("Model", ".spec.model", description="The HuggingFace embedding model"),
                _ready("Whether a pod serves embeddings (the Ready condition)"),
                PrinterColumn("Replicas", ".status.readyReplicas", "integer", "Pods ready to serve"),
                PrinterColumn("URL", ".status.url", description="URL of the TEI API"),
                _AGE,
            ),
            embedding_server_rules,
        ),
    )
}


def kind_info(kind: str) -> KindInfo:
    """The registry entry of ``kind`` (raises ``KeyError`` naming the known kinds)."""
    try:
        return KINDS[kind]
    except KeyError:
        raise KeyError(f"unknown kind {kind!r}; known kinds: {', '.join(KINDS)}") from None


def model_for(kind: str) -> type[CustomResource]:
    """The pydantic model of ``kind``."""
    return kind_info(kind).model
