"""Merging several backends' tools, prompts and resources into one view: pure logic, no I/O.

The rules (filter, overrides, then ``prefix`` / ``priority`` / ``manual`` conflict resolution; prompts
alike without filters; resources never renamed; every list sorted) are docs/vmcp.md's "Merge rules".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, Literal, NamedTuple, TypeVar

from mcp_types import Prompt, Resource, ResourceTemplate, Tool

from api.vmcp_config import AggregationConfig, validate_prefix_format
from gateway.filters import ToolFilter

__all__ = [
    "AggregatedView",
    "BackendCapabilities",
    "ComponentKind",
    "Conflict",
    "Route",
    "aggregate",
    "backend_rank",
    "prefixed_name",
]

ComponentKind = Literal["tool", "prompt", "resource", "resourceTemplate"]


@dataclass(frozen=True)
class BackendCapabilities:
    """What one backend lists (each list already fully paginated)."""

    tools: Sequence[Tool] = ()
    prompts: Sequence[Prompt] = ()
    resources: Sequence[Resource] = ()
    resource_templates: Sequence[ResourceTemplate] = ()


@dataclass(frozen=True)
class Route:
    """Where an exposed name goes: the owning backend and the name (or URI) it knows the item by."""

    backend: str
    name: str


@dataclass(frozen=True)
class Conflict:
    """Several backends claimed one exposed name (or URI)."""

    kind: ComponentKind
    name: str
    backends: tuple[str, ...]
    """All claimants, best-ranked first."""
    winner: str | None
    """The backend that kept the name, or None when the conflict is unresolved and nobody kept it."""

    def describe(self) -> str:
        claimants = ", ".join(self.backends)
        if self.winner is None:
            return f"{self.kind} {self.name!r} is offered by {claimants}: unresolved, none exposed"
        dropped = ", ".join(b for b in self.backends if b != self.winner)
        return f"{self.kind} {self.name!r} is offered by {claimants}: {self.winner} wins, dropped {dropped}"


@dataclass(frozen=True)
class AggregatedView:
    """The merged lists, how to route each entry, and what was dropped on the way."""

    tools: tuple[Tool, ...] = ()
    prompts: tuple[Prompt, ...] = ()
    resources: tuple[Resource, ...] = ()
    resource_templates: tuple[ResourceTemplate, ...] = ()
    tool_routes: Mapping[str, Route] = field(default_factory=dict)
    prompt_routes: Mapping[str, Route] = field(default_factory=dict)
    resource_routes: Mapping[str, Route] = field(default_factory=dict)
    template_routes: Mapping[str, Route] = field(default_factory=dict)
    conflicts: tuple[Conflict, ...] = ()
    warnings: tuple[str, ...] = ()
    """Configuration that matched nothing (unknown workloads, overrides of missing tools)."""

    def route_resource(self, uri: str) -> Route | None:
        """The backend for ``resources/read``: an exact listed URI first, then the templates by rank."""
        exact = self.resource_routes.get(uri)
        if exact is not None:
            return exact
        for template in self.resource_templates:
            if _template_regex(template.uri_template).fullmatch(uri):
                route = self.template_routes[template.uri_template]
                return Route(route.backend, uri)
        return None


def prefixed_name(prefix_format: str, backend: str, name: str) -> str:
    """``{workload}_`` + ``status`` for backend ``git`` -> ``git_status``."""
    return validate_prefix_format(prefix_format).replace("{workload}", backend) + name


def backend_rank(backends: Sequence[str], priority_order: Sequence[str]) -> list[str]:
    """Backends best first: those in ``priority_order`` in its order, then the rest by name."""
    present = set(backends)
    listed = [b for b in priority_order if b in present]
    return listed + sorted(present - set(listed))


_Item = TypeVar("_Item", Tool, Prompt)
_UriItem = TypeVar("_UriItem", Resource, ResourceTemplate)
_Any = TypeVar("_Any", Tool, Prompt, Resource, ResourceTemplate)


def aggregate(backends: Mapping[str, BackendCapabilities], policy: AggregationConfig) -> AggregatedView:
    """Merge the backends' lists under ``policy`` (see the module docstring for the rules)."""
    names = list(backends)
    rank = backend_rank(names, policy.conflict_resolution_config.priority_order)
    warnings = list(_config_warnings(backends, policy))

    tool_lists: dict[str, list[tuple[str, Tool]]] = {}
    for backend in names:
        listed = _dedupe(backends[backend].tools, lambda t: t.name)
        shown = ToolFilter.for_workload(policy.tools_for(backend)).shown(listed)  # (original, as shown)
        tool_lists[backend], shadowed = _unique_after_overrides(backend, shown)
        warnings += shadowed

    prompt_lists = {b: [(p.name, p) for p in _dedupe(backends[b].prompts, lambda p: p.name)] for b in names}
    strategy = policy.conflict_resolution
    tools = _merge("tool", _named(tool_lists, policy), rank, strategy)
    prompts = _merge("prompt", _named(prompt_lists, policy), rank, strategy)
    resources = _merge("resource", _by_uri({b: backends[b].resources for b in names}, _uri), rank)
    templates = _merge(
        "resourceTemplate", _by_uri({b: backends[b].resource_templates for b in names}, _uri), rank
    )
    conflicts = tools.conflicts + prompts.conflicts + resources.conflicts + templates.conflicts
    return AggregatedView(
        tools=tools.items,
        prompts=prompts.items,
        resources=resources.items,
        resource_templates=templates.items,
        tool_routes=tools.routes,
        prompt_routes=prompts.routes,
        resource_routes=resources.routes,
        template_routes=templates.routes,
        conflicts=tuple(sorted(conflicts, key=lambda c: (c.kind, c.name))),
        warnings=tuple(sorted(warnings)),
    )


def _unique_after_overrides(
    backend: str, shown: Sequence[tuple[str, Tool]]
) -> tuple[list[tuple[str, Tool]], tuple[str, ...]]:
    """An override may rename a tool onto another tool of the same backend. The explicit rename wins
    (between two renames, the smaller original name); the shadowed tool is hidden and warned about."""
    best: dict[str, tuple[str, Tool]] = {}
    for pair in shown:
        current = best.get(pair[1].name)
        if current is None or _rename_key(*pair) < _rename_key(*current):
            best[pair[1].name] = pair
    kept = [pair for pair in shown if best[pair[1].name] is pair]
    warnings = tuple(
        f"aggregation.tools[{backend}].overrides: {best[tool.name][0]!r} is renamed to {tool.name!r}, "
        f"which hides the backend's tool {original!r}"
        for original, tool in sorted((p for p in shown if best[p[1].name] is not p), key=lambda p: p[0])
    )
    return kept, warnings


def _rename_key(original: str, tool: Tool) -> tuple[bool, str]:
    return (original == tool.name, original)


def _dedupe(items: Sequence[_Any], key: Callable[[_Any], str]) -> list[_Any]:
    """Drop repeated names within one backend (a malformed backend); the first one listed stays."""
    seen: set[str] = set()
    result: list[_Any] = []
    for item in items:
        if key(item) not in seen:
            seen.add(key(item))
            result.append(item)
    return result


_Claims = Callable[[str], Iterable[tuple[str, str, _Any]]]
"""One backend's claims: ``(exposed name or URI, the backend's own name for it, item as shown)``."""


def _named(
    per_backend: Mapping[str, Sequence[tuple[str, _Item]]], policy: AggregationConfig
) -> _Claims[_Item]:
    """Tools and prompts claim their (prefixed, under ``prefix``) names."""
    prefix = (
        policy.conflict_resolution_config.prefix_format if policy.conflict_resolution == "prefix" else None
    )

    def claims(backend: str) -> Iterator[tuple[str, str, _Item]]:
        for original, item in per_backend.get(backend, ()):
            exposed = prefixed_name(prefix, backend, item.name) if prefix is not None else item.name
            yield (
                exposed,
                original,
                item if item.name == exposed else item.model_copy(update={"name": exposed}),
            )

    return claims


def _by_uri(
    per_backend: Mapping[str, Sequence[_UriItem]], key: Callable[[_UriItem], str]
) -> _Claims[_UriItem]:
    """Resources and templates claim their URIs, never renamed."""
    return lambda backend: ((key(i), key(i), i) for i in _dedupe(per_backend.get(backend, ()), key))


class _Merged(NamedTuple, Generic[_Any]):
    items: tuple[_Any, ...]
    routes: dict[str, Route]
    conflicts: list[Conflict]


def _uri(item: Resource | ResourceTemplate) -> str:
    return item.uri_template if isinstance(item, ResourceTemplate) else str(item.uri)


def _merge(
    kind: ComponentKind, claims_of: _Claims[_Any], rank: Sequence[str], strategy: str = "priority"
) -> _Merged[_Any]:
    """Every claim in rank order; a name claimed by several backends is a conflict, which the
    best-ranked backend wins under ``priority`` (always for URIs) and nobody wins otherwise."""
    claims: dict[str, list[tuple[str, str, _Any]]] = {}
    for backend in rank:
        for exposed, original, item in claims_of(backend):
            claims.setdefault(exposed, []).append((backend, original, item))
    items: list[_Any] = []
    routes: dict[str, Route] = {}
    conflicts: list[Conflict] = []
    for exposed in sorted(claims):
        claimants = claims[exposed]
        if len(claimants) > 1:
            owners = tuple(backend for backend, _, _ in claimants)
            winner = owners[0] if strategy == "priority" else None
            conflicts.append(Conflict(kind, exposed, owners, winner))
            if winner is None:
                continue
        backend, original, item = claimants[0]
        items.append(item)
        routes[exposed] = Route(backend, original)
    return _Merged(tuple(items), routes, conflicts)


def _config_warnings(
    backends: Mapping[str, BackendCapabilities], policy: AggregationConfig
) -> tuple[str, ...]:
    warnings: list[str] = []
    for entry in policy.tools:
        if entry.workload not in backends:
            warnings.append(f"aggregation.tools: workload {entry.workload!r} is not a connected backend")
            continue
        names = {t.name for t in backends[entry.workload].tools}
        warnings.extend(
            f"aggregation.tools[{entry.workload}].overrides: backend has no tool {tool!r}"
            for tool in sorted(entry.overrides)
            if tool not in names
        )
    if policy.conflict_resolution == "priority":
        warnings.extend(
            f"priorityOrder: backend {name!r} is not connected"
            for name in policy.conflict_resolution_config.priority_order
            if name not in backends
        )
    return tuple(warnings)


_TEMPLATE_VAR = re.compile(r"\{[^}]*\}")


def _template_regex(uri_template: str) -> re.Pattern[str]:
    """A loose RFC 6570 matcher: each ``{var}`` matches one or more characters other than '/'."""
    parts = _TEMPLATE_VAR.split(uri_template)
    return re.compile("[^/]+".join(re.escape(p) for p in parts))
