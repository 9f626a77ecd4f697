"""Rewriting ToolHive manifests for this API (``mcp-operator migrate``), as pure functions.

:func:`migrate_object` changes the API group (``toolhive.stacklok.dev`` -> ``mcp-operator.dev``, the
version kept), moves the fields ToolHive renamed in earlier releases to their current names
(:data:`RENAMED`), drops what the API server wrote (status, uid, resourceVersion, managedFields,
ToolHive's finalizers), and then checks the result with the operator's own rules
(:func:`api.validation.parse_and_validate`): whatever the operator would refuse is reported, never
removed, so a field that carries security intent (authorization, authentication) is never dropped by
the migration either. Objects of other groups (Secrets, ConfigMaps) pass through unchanged.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from api.base import API_GROUP
from api.reserved import lookup_path
from api.validation import parse_and_validate

__all__ = ["RENAMED", "TOOLHIVE_GROUP", "Migration", "migrate_object"]

TOOLHIVE_GROUP = "toolhive.stacklok.dev"

RENAMED: dict[str, tuple[tuple[str, str], ...]] = {
    "MCPServer": (("spec.port", "spec.proxyPort"), ("spec.targetPort", "spec.mcpPort")),
    "MCPRemoteProxy": (("spec.port", "spec.proxyPort"), ("spec.remoteURL", "spec.remoteUrl")),
    "VirtualMCPServer": (
        ("spec.aggregation", "spec.config.aggregation"),
        ("spec.operational", "spec.config.operational"),
        ("spec.compositeTools", "spec.config.compositeTools"),
        ("spec.compositeToolRefs", "spec.config.compositeToolRefs"),
    ),
}
"""Per kind: ToolHive's earlier field -> its current name (the same meaning in both; ToolHive moved the
VirtualMCPServer ones under ``spec.config`` in #3242 and its CRD has no alias for the old ones)."""

_SERVER_METADATA = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "selfLink")
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


@dataclass
class Migration:
    """One object, rewritten, with what was changed and what the operator would still refuse."""

    obj: dict[str, Any]
    """The rewritten object (the input object unchanged when it is not ToolHive's)."""
    changes: list[str] = field(default_factory=list)
    """What was rewritten, e.g. ``spec.port -> spec.proxyPort``."""
    refused: list[str] = field(default_factory=list)
    """``field: message`` for every problem the operator would report (Accepted=False)."""

    @property
    def label(self) -> str:
        """``Kind/name`` of the object, for reports."""
        name = (self.obj.get("metadata") or {}).get("name", "(no name)")
        return f"{self.obj.get('kind', '(no kind)')}/{name}"


def _pop(data: dict[str, Any], path: str) -> tuple[bool, Any]:
    *parents, name = path.split(".")
    node: Any = data
    for key in parents:
        node = node.get(key) if isinstance(node, dict) else None
    if isinstance(node, dict) and name in node:
        return True, node.pop(name)
    return False, None


def _put(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, name = path.split(".")
    node = data
    for key in parents:
        node = node.setdefault(key, {})
    node[name] = value


def _rename(obj: dict[str, Any], old: str, new: str) -> str | None:
    """Move ``old`` to ``new`` when ``new`` is unset or equal; a conflicting pair stays (and is refused)."""
    present, value = lookup_path(obj, old)
    if not present:
        return None
    has_new, current = lookup_path(obj, new)
    if has_new and current != value:
        return None
    _pop(obj, old)
    _put(obj, new, value)
    return f"{old} -> {new}"


def _strip_server_fields(obj: dict[str, Any]) -> list[str]:
    changes = []
    if obj.pop("status", None) is not None:
        changes.append("status removed")
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        dropped = [k for k in _SERVER_METADATA if meta.pop(k, None) is not None]
        annotations = meta.get("annotations") or {}
        if annotations.pop(_LAST_APPLIED, None) is not None:
            dropped.append(f"annotations[{_LAST_APPLIED}]")
        finalizers = meta.get("finalizers") or []
        if kept := [f for f in finalizers if TOOLHIVE_GROUP not in f]:
            meta["finalizers"] = kept
        elif finalizers:
            meta.pop("finalizers")
        if len(kept) < len(finalizers):
            dropped.append("ToolHive finalizers")
        changes += [f"metadata.{k} removed" for k in dropped]
    return changes


def migrate_object(obj: dict[str, Any]) -> Migration | None:
    """``obj`` rewritten for this API, or None when it is not a ToolHive object (kept as it is)."""
    group, _, version = str(obj.get("apiVersion", "")).partition("/")
    if group != TOOLHIVE_GROUP:
        return None
    out = copy.deepcopy(obj)
    out["apiVersion"] = f"{API_GROUP}/{version}"
    changes = [f"apiVersion {obj['apiVersion']} -> {out['apiVersion']}", *_strip_server_fields(out)]
    for old, new in RENAMED.get(str(out.get("kind")), ()):
        if (change := _rename(out, old, new)) is not None:
            changes.append(change)
    _, problems = parse_and_validate(out)
    return Migration(out, changes, [str(p) for p in problems])
