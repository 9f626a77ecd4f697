"""MCP reconcilers: they know MCP and the API models, and nothing about HTTP.

``register(manager)`` adds every MCP controller to the generic manager from ``controller.core``.
"""

from __future__ import annotations

from typing import Any


def register(manager: Any) -> None:
    """Add the MCP controllers to ``manager`` (they are registered here as each kind lands)."""
    del manager
