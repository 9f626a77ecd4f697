"""Every controller of the API group's kinds, in registration order: adding a kind adds a line here.

Workload kinds are :class:`~controller.reconcilers.workload.WorkloadKind` values run by the one
``reconcile_workload``; the config kinds (MCPToolConfig, MCPAuthzConfig, MCPExternalAuthConfig) and
MCPGroup have controllers of their own (they only report status).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from controller.core import Controller
from controller.core.manager import Manager
from controller.reconcilers import (
    embeddingserver,
    mcpexternalauthconfig,
    mcpgroup,
    mcpoidcconfig,
    mcpremoteproxy,
    mcpserver,
    mcpserverentry,
    mcptelemetryconfig,
    mcptoolconfig,
    virtualmcpcompositetooldefinition,
    virtualmcpserver,
)
from controller.reconcilers.settings import ReconcilerSettings
from controller.reconcilers.workload import WorkloadKind, workload_controller

ControllerFactory = Callable[[Manager, ReconcilerSettings], Controller]


def workload(kind: Callable[[ReconcilerSettings], WorkloadKind[Any, Any]]) -> ControllerFactory:
    """The controller factory of a workload kind."""
    return lambda manager, settings: workload_controller(kind(settings), manager, settings)


CONTROLLERS: dict[str, ControllerFactory] = {
    "MCPServer": workload(mcpserver.kind),
    "MCPRemoteProxy": workload(mcpremoteproxy.kind),
    "MCPExternalAuthConfig": mcpexternalauthconfig.controller,
    "MCPToolConfig": mcptoolconfig.controller,
    "MCPAuthzConfig": mcptoolconfig.authz_controller,
    "MCPTelemetryConfig": mcptelemetryconfig.controller,
    "MCPGroup": mcpgroup.controller,
    "VirtualMCPServer": workload(virtualmcpserver.kind),
    "MCPOIDCConfig": mcpoidcconfig.controller,
    "MCPServerEntry": mcpserverentry.controller,
    "VirtualMCPCompositeToolDefinition": virtualmcpcompositetooldefinition.controller,
    "EmbeddingServer": workload(embeddingserver.kind),
}
"""Kind -> its controller; a test checks that every kind of ``api.registry.KINDS`` has one."""
