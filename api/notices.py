"""``notices``: what in a valid spec is accepted, as ToolHive accepts it, but does nothing (pure).

A notice is not a problem: the object is Accepted, and the operator reports each notice in the
``Accepted`` condition (reason ``AcceptedWithWarnings``) and in a Warning Event, so that a user learns
of it. Today: a Cedar ``permit`` naming an action requests never carry (it never matches) and a composite
tool's template reading a root that does not exist (it renders ``<no value>``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from api.authz import authz_config_notices, authz_notices
from api.composite_rules import composite_tool_notices
from api.problems import Problem
from api.resource import CustomResource

__all__ = ["notices"]


def _vmcp(spec: Any) -> list[Problem]:
    found = []
    if spec.incoming_auth is not None:
        found += authz_notices(spec.incoming_auth.authz_config, "spec.incomingAuth.authzConfig")
    for i, tool in enumerate(spec.config.composite_tools or []):
        found += composite_tool_notices(tool, f"spec.config.compositeTools[{i}]")
    return found


_NOTICES: dict[str, Callable[[Any], list[Problem]]] = {
    "MCPServer": lambda spec: authz_notices(spec.authz_config, "spec.authzConfig"),
    "MCPRemoteProxy": lambda spec: authz_notices(spec.authz_config, "spec.authzConfig"),
    "VirtualMCPServer": _vmcp,
    "MCPAuthzConfig": lambda spec: authz_config_notices(spec.config, "spec.config"),
    "VirtualMCPCompositeToolDefinition": lambda spec: composite_tool_notices(spec, "spec"),
}


def notices(obj: CustomResource) -> list[Problem]:
    """The notices of ``obj``'s spec (valid, checked by the rules first), sorted by field."""
    find = _NOTICES.get(obj.KIND)
    return sorted(find(getattr(obj, "spec", None))) if find is not None else []
