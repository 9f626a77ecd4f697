"""MCP reconcilers: they know MCP and the API models, and nothing about HTTP.

``register(manager)`` adds every MCP controller (``controller.reconcilers.registry``) to the generic
manager from ``controller.core``.
"""

from __future__ import annotations

from controller.core.manager import Manager
from controller.reconcilers.settings import ReconcilerSettings


def register(manager: Manager, settings: ReconcilerSettings | None = None) -> None:
    """Add the MCP controllers to ``manager``."""
    # Imported here so that `import controller.reconcilers` stays light.
    from controller.reconcilers.registry import CONTROLLERS  # noqa: PLC0415

    settings = settings or ReconcilerSettings.from_env()
    for factory in CONTROLLERS.values():
        manager.add_controller(factory(manager, settings))
