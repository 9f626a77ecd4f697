"""The MCPTelemetryConfig controller: ``Accepted`` (its rules, each problem naming the field) and
``status.configHash``; the proxy workloads referring to it copy the hash into ``telemetryConfigHash``
and re-render their proxy's environment when it changes (they watch it through ``ref:telemetryConfig``).
"""

from __future__ import annotations

from api.mcptelemetryconfig import MCPTelemetryConfig
from controller.core import Controller
from controller.core.manager import Manager
from controller.reconcilers.kinds import MCPTELEMETRYCONFIG
from controller.reconcilers.mcptoolconfig import config_controller
from controller.reconcilers.settings import ReconcilerSettings


def controller(manager: Manager, settings: ReconcilerSettings) -> Controller:
    """The MCPTelemetryConfig controller (it reads nothing but the config itself)."""
    message = "the telemetry configuration is valid"
    return config_controller("mcptelemetryconfig", MCPTELEMETRYCONFIG, MCPTelemetryConfig, message)
