"""Tool filter, deny list and rename / re-describe (MCPToolConfig semantics), as pure functions.

Keys of the configuration are always the backend's ORIGINAL tool names. Order: allow list, then deny
list, then overrides. A hidden tool is absent from ``tools/list`` and cannot be called: :meth:`resolve`
maps the name a client uses back to the original, or returns ``None``.
"""

from __future__ import annotations

from collections.abc import Iterable

import mcp_types as types

from api.proxy_config import ToolFilterConfig

__all__ = ["ToolFilter"]


class ToolFilter:
    """Applies one :class:`api.proxy_config.ToolFilterConfig`."""

    def __init__(self, config: ToolFilterConfig | None = None) -> None:
        self.config = config or ToolFilterConfig()
        self._allow = None if self.config.allow is None else frozenset(self.config.allow)
        self._deny = frozenset(self.config.deny)
        self._renamed_to_original = {
            override.name: original
            for original, override in self.config.overrides.items()
            if override.name is not None
        }
        self.identity = self._allow is None and not self._deny and not self.config.overrides

    def allowed(self, original: str) -> bool:
        """Whether the backend tool ``original`` is visible."""
        return (self._allow is None or original in self._allow) and original not in self._deny

    def exposed_name(self, original: str) -> str:
        override = self.config.overrides.get(original)
        return override.name if override is not None and override.name is not None else original

    def apply(self, tools: Iterable[types.Tool]) -> list[types.Tool]:
        """The tools clients see: filtered, renamed and re-described."""
        if self.identity:
            return list(tools)
        result: list[types.Tool] = []
        for tool in tools:
            if not self.allowed(tool.name):
                continue
            override = self.config.overrides.get(tool.name)
            if override is not None:
                update: dict[str, str] = {}
                if override.name is not None:
                    update["name"] = override.name
                if override.description is not None:
                    update["description"] = override.description
                result.append(tool.model_copy(update=update))
                continue
            if tool.name in self._renamed_to_original:
                continue  # another tool was renamed to this name; the override wins
            result.append(tool)
        return result

    def resolve(self, exposed: str) -> str | None:
        """The backend name for a name a client called, or ``None`` when that tool is hidden."""
        if self.identity:
            return exposed
        original = self._renamed_to_original.get(exposed)
        if original is None:
            if exposed in self.config.overrides and self.exposed_name(exposed) != exposed:
                return None  # the original name of a renamed tool is not callable
            original = exposed
        return original if self.allowed(original) else None
