"""Which backend tools clients see, and under which name: the one tool rule of the proxy and the gateway.

The rule (globs on ORIGINAL names, allow then deny then overrides, renamed-over names hidden) is
documented in docs/proxy.md ("Tool matching rule"). Built from the proxy's ``toolFilter`` or from one
gateway backend's ``aggregation.tools`` entry (:meth:`ToolFilter.for_workload`). Pure, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from fnmatch import translate

import mcp_types as types

from api.proxy_config import ToolFilterConfig, ToolOverrideConfig
from api.vmcp_config import ToolOverride, WorkloadToolConfig

__all__ = ["ToolFilter"]

_GLOB = frozenset("*?[")


class _Names:
    """A list of names and globs: exact names in a set (one lookup), globs in one compiled pattern."""

    __slots__ = ("exact", "pattern")

    def __init__(self, entries: Iterable[str]) -> None:
        entries = tuple(entries)
        self.exact = frozenset(e for e in entries if _GLOB.isdisjoint(e))
        globs = [translate(e) for e in entries if not _GLOB.isdisjoint(e)]
        self.pattern = re.compile("|".join(globs)) if globs else None

    def __contains__(self, name: str) -> bool:
        return name in self.exact or (self.pattern is not None and self.pattern.match(name) is not None)

    def __bool__(self) -> bool:
        return bool(self.exact) or self.pattern is not None


class ToolFilter:
    """Applies one allow list, deny list and override map (see the module docstring)."""

    def __init__(self, config: ToolFilterConfig | None = None) -> None:
        self.config = config or ToolFilterConfig()
        self._setup(self.config.allow, self.config.deny, self.config.overrides)

    @classmethod
    def for_workload(cls, entry: WorkloadToolConfig | None) -> ToolFilter:
        """The rule of one gateway backend's ``aggregation.tools`` entry (None: every tool as it is)."""
        rule = cls()
        if entry is not None:
            allow: tuple[str, ...] | None = () if entry.exclude_all else (tuple(entry.filter) or None)
            rule._setup(allow, (), entry.overrides)
        return rule

    def _setup(
        self,
        allow: Sequence[str] | None,
        deny: Sequence[str],
        overrides: Mapping[str, ToolOverrideConfig | ToolOverride],
    ) -> None:
        self._allow = None if allow is None else _Names(allow)
        self._deny = _Names(deny)
        self._overrides = overrides
        self._renamed_to_original = {
            override.name: original for original, override in overrides.items() if override.name is not None
        }
        self.identity = self._allow is None and not self._deny and not overrides

    def allowed(self, original: str) -> bool:
        """Whether the backend tool ``original`` is visible (before renames)."""
        return (self._allow is None or original in self._allow) and original not in self._deny

    def exposed_name(self, original: str) -> str:
        override = self._overrides.get(original)
        return override.name if override is not None and override.name is not None else original

    def shown(self, tools: Iterable[types.Tool]) -> list[tuple[str, types.Tool]]:
        """``(original name, tool as shown)`` of the allowed tools, renamed and re-described, in order."""
        result: list[tuple[str, types.Tool]] = []
        for tool in tools:
            if not self.allowed(tool.name):
                continue
            override = self._overrides.get(tool.name)
            update: dict[str, str] = {}
            if override is not None and override.name is not None:
                update["name"] = override.name
            if override is not None and override.description is not None:
                update["description"] = override.description
            result.append((tool.name, tool.model_copy(update=update) if update else tool))
        return result

    def apply(self, tools: Iterable[types.Tool]) -> list[types.Tool]:
        """The tools clients see: filtered, renamed and re-described; a name taken by a rename is hidden."""
        if self.identity:
            return list(tools)
        return [
            tool
            for original, tool in self.shown(tools)
            if original in self._overrides or tool.name not in self._renamed_to_original
        ]

    def resolve(self, exposed: str) -> str | None:
        """The backend name for a name a client called, or ``None`` when that tool is hidden."""
        if self.identity:
            return exposed
        original = self._renamed_to_original.get(exposed)
        if original is None:
            if exposed in self._overrides and self.exposed_name(exposed) != exposed:
                return None  # the original name of a renamed tool is not callable
            original = exposed
        return original if self.allowed(original) else None
