"""The MCPTelemetryConfig controller: validity (its rules, each problem naming the field), ``configHash``,
the referencing workloads and deletion protection (:mod:`controller.reconcilers.referenced_config`, through
the ``ref:telemetryConfig`` index). The proxy workloads referring to it copy the hash into
``telemetryConfigHash`` and re-render their proxy's environment when it changes (through the same index).
"""

from __future__ import annotations

from api.mcptelemetryconfig import MCPTelemetryConfig
from controller.core import Controller
from controller.core.manager import Manager
from controller.reconcilers.kinds import MCPTELEMETRYCONFIG
from controller.reconcilers.referenced_config import ReferencedKind, referenced_controller
from controller.reconcilers.refs import TELEMETRY_INDEX, index_telemetry
from controller.reconcilers.settings import ReconcilerSettings

TELEMETRY_CONFIG = ReferencedKind(
    name="mcptelemetryconfig",
    resource=MCPTELEMETRYCONFIG,
    model=MCPTelemetryConfig,
    reference="telemetryConfigRef",
    index=TELEMETRY_INDEX,
    index_func=index_telemetry,
    valid=lambda parsed: "the telemetry configuration is valid",
)


def controller(manager: Manager, settings: ReconcilerSettings) -> Controller:
    """The MCPTelemetryConfig controller (``settings`` unused: it renders nothing)."""
    return referenced_controller(TELEMETRY_CONFIG, manager)
