"""``validate``: the spec problems of an object of any kind, and parsing that reports problems too.

Typical use in a reconciler::

    obj, problems = parse_and_validate(raw)   # raw: the dict from the cache
    if problems: set Accepted=False with format_problems(problems) and stop until the spec changes
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from api.mcpexternalauthconfig import MCPExternalAuthConfig
from api.mcpremoteproxy import MCPRemoteProxy
from api.mcpserver import MCPServer
from api.mcptoolconfig import MCPToolConfig
from api.problems import Problem, format_problems, problems_from_validation_error
from api.registry import KINDS
from api.resource import CustomResource
from api.rules import (
    external_auth_config_rules,
    mcp_remote_proxy_rules,
    mcp_server_rules,
    tool_config_rules,
    virtual_mcp_server_rules,
)
from api.virtualmcpserver import VirtualMCPServer

__all__ = ["Problem", "format_problems", "parse_and_validate", "problems_from_validation_error", "validate"]


def _rules(obj: CustomResource) -> Callable[[], list[Problem]]:
    if isinstance(obj, MCPServer):
        return lambda: mcp_server_rules(obj.spec)
    if isinstance(obj, MCPRemoteProxy):
        return lambda: mcp_remote_proxy_rules(obj.spec)
    if isinstance(obj, VirtualMCPServer):
        return lambda: virtual_mcp_server_rules(obj.spec)
    if isinstance(obj, MCPToolConfig):
        return lambda: tool_config_rules(obj.spec)
    if isinstance(obj, MCPExternalAuthConfig):
        return lambda: external_auth_config_rules(obj.spec)
    return list  # MCPGroup: nothing beyond the schema


def validate(obj: CustomResource) -> list[Problem]:
    """Every cross-field problem of ``obj``'s spec, sorted by field; empty when the spec is valid."""
    return sorted(_rules(obj)())


def parse_and_validate(data: dict[str, Any]) -> tuple[CustomResource | None, list[Problem]]:
    """Parse an object of any registered kind (chosen by ``data["kind"]``) and validate it.

    Returns ``(None, problems)`` when it does not parse (problems name the fields), else
    ``(obj, validate(obj))``.
    """
    kind = data.get("kind")
    info = KINDS.get(kind) if isinstance(kind, str) else None
    if info is None:
        return None, [Problem("kind", f"{kind!r} is not a kind of this API; use one of {', '.join(KINDS)}")]
    try:
        obj = info.model.model_validate(data)
    except ValidationError as err:
        return None, problems_from_validation_error(err)
    return obj, validate(obj)
