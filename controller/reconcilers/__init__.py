"""MCP reconcilers: they know MCP and the API models, and nothing about HTTP.

``register(manager)`` adds every MCP controller to the generic manager from ``controller.core``.
"""

from __future__ import annotations

from controller.core.manager import Manager
from controller.reconcilers.settings import ReconcilerSettings


def register(manager: Manager, settings: ReconcilerSettings | None = None) -> None:
    """Add the MCP controllers to ``manager``."""
    # Imported here so that `import controller.reconcilers` stays light.
    from controller.reconcilers import mcpgroup, mcpserver, virtualmcpserver  # noqa: PLC0415
    from controller.reconcilers.mcpexternalauthconfig import register as register_auth  # noqa: PLC0415
    from controller.reconcilers.mcpremoteproxy import register as register_remote  # noqa: PLC0415
    from controller.reconcilers.mcptoolconfig import register as register_tools  # noqa: PLC0415

    settings = settings or ReconcilerSettings.from_env()
    mcpserver.register(manager, settings)
    register_remote(manager, settings)
    register_auth(manager)
    register_tools(manager)
    mcpgroup.register(manager)
    virtualmcpserver.register(manager, settings)
