"""Resource descriptors of the API group's kinds, derived from the API registry (one source of names)."""

from __future__ import annotations

from api.registry import kind_info
from controller.core import Resource


def resource_of(kind: str) -> Resource:
    """The core :class:`Resource` of one of our kinds."""
    info = kind_info(kind)
    return Resource(info.group, info.version, info.kind, info.plural, namespaced=True)


MCPSERVER = resource_of("MCPServer")
MCPREMOTEPROXY = resource_of("MCPRemoteProxy")
VIRTUALMCPSERVER = resource_of("VirtualMCPServer")
MCPGROUP = resource_of("MCPGroup")
MCPTOOLCONFIG = resource_of("MCPToolConfig")
MCPEXTERNALAUTHCONFIG = resource_of("MCPExternalAuthConfig")
VIRTUALMCPCOMPOSITETOOLDEFINITION = resource_of("VirtualMCPCompositeToolDefinition")
MCPOIDCCONFIG = resource_of("MCPOIDCConfig")
MCPSERVERENTRY = resource_of("MCPServerEntry")
MCPAUTHZCONFIG = resource_of("MCPAuthzConfig")
MCPTELEMETRYCONFIG = resource_of("MCPTelemetryConfig")
EMBEDDINGSERVER = resource_of("EmbeddingServer")

ALL = (
    MCPSERVER,
    MCPREMOTEPROXY,
    VIRTUALMCPSERVER,
    MCPGROUP,
    MCPTOOLCONFIG,
    MCPEXTERNALAUTHCONFIG,
    VIRTUALMCPCOMPOSITETOOLDEFINITION,
    MCPOIDCCONFIG,
    MCPSERVERENTRY,
    MCPAUTHZCONFIG,
    MCPTELEMETRYCONFIG,
    EMBEDDINGSERVER,
)
