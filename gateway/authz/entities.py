"""The Cedar entities of one request, as ToolHive defines them (docs/auth.md, "Authorization").

- principal ``Client::"<sub>"`` with every claim as attribute ``claim_<name>``, a child of
  ``<groupEntityType>::"<group>"`` for each group of the token (``THVGroup`` by default); a request
  without a token is ``Anonymous::"anonymous"`` (no attributes, no groups);
- actions ``Action::"call_tool"``, ``"get_prompt"``, ``"read_resource"`` (lists are filtered item by
  item with these three);
- resources ``Tool::"<name>"`` (attributes ``name``, ``operation``, ``feature``, the tool's MCP annotation
  hints, ``arg_<name>`` of scalar arguments), ``Prompt::"<name>"`` and ``Resource::"<uri>"``, each a child
  of ``MCP::"<server>"``: the proxy's server, or the gateway backend the item comes from;
- ``context``: the ``claim_*`` and ``arg_*`` values again.

Pure functions over plain data; values a token or a client sends are converted to Cedar JSON with the
escape keys (``__entity``, ``__extn``, ``__expr``) removed, so they can never become entity references.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from api.authz_config import ACTIONS, ANONYMOUS, GROUP_CLAIM_DEFAULTS, CedarConfig

__all__ = [
    "ANONYMOUS",
    "HINTS",
    "Item",
    "Principal",
    "arguments_attributes",
    "hints_of",
    "principal_for",
    "resource_entity",
]

_ESCAPES = frozenset({"__entity", "__extn", "__expr"})
_MAX_DEPTH = 10
_LONG = (-(2**63), 2**63 - 1)
_RESOURCE_TYPES = {"tool": "Tool", "prompt": "Prompt", "resource": "Resource"}
_OPERATIONS = {"tool": "call", "prompt": "get", "resource": "read"}
HINTS = ("readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint")
"""The MCP tool annotation hints policies can read."""
_HINT_FIELDS = {
    "readOnlyHint": "read_only_hint",
    "destructiveHint": "destructive_hint",
    "idempotentHint": "idempotent_hint",
    "openWorldHint": "open_world_hint",
}


def cedar_value(value: object, depth: int = 0) -> Any:
    """``value`` as a Cedar JSON value, or None when Cedar has no such value (null, a fraction, a number
    beyond 64 bits, nesting beyond 10 levels)."""
    if isinstance(value, bool | str):
        return value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return value if _LONG[0] <= value <= _LONG[1] else None
    if depth >= _MAX_DEPTH:
        return None
    if isinstance(value, list | tuple):
        items = (cedar_value(v, depth + 1) for v in value)
        return [v for v in items if v is not None]
    if isinstance(value, Mapping):
        record = {str(k): cedar_value(v, depth + 1) for k, v in value.items() if k not in _ESCAPES}
        return {k: v for k, v in record.items() if v is not None}
    return None


def _prefixed(prefix: str, values: Mapping[str, Any]) -> dict[str, Any]:
    converted = {f"{prefix}{k}": cedar_value(v) for k, v in values.items()}
    return {k: v for k, v in converted.items() if v is not None}


def arguments_attributes(arguments: object, read: frozenset[str]) -> dict[str, Any]:
    """``arg_<name>`` for each scalar argument, ``arg_<name>_present`` for the others (as ToolHive),
    those the policies ``read`` only."""
    if not isinstance(arguments, Mapping):
        return {}
    attributes: dict[str, Any] = {}
    for name, value in arguments.items():
        converted = cedar_value(value) if isinstance(value, str | bool | int | float) else None
        key = f"arg_{name}_present" if converted is None else f"arg_{name}"
        if key in read:
            attributes[key] = True if converted is None else converted
    return attributes


def _groups(claims: Mapping[str, Any], config: CedarConfig) -> list[str]:
    """The token's groups: the configured group claim (else the first default one present) and the role
    claim, strings only, in order, without repeats."""
    names = [config.group_claim_name] if config.group_claim_name else list(GROUP_CLAIM_DEFAULTS)
    found: list[Any] = []
    for name in names:
        if name in claims:
            found = [claims[name]]
            break
    if config.role_claim_name and config.role_claim_name in claims:
        found.append(claims[config.role_claim_name])
    groups: list[str] = []
    for value in found:
        for group in [value] if isinstance(value, str) else value if isinstance(value, list) else []:
            if isinstance(group, str) and group not in groups:
                groups.append(group)
    return groups


@dataclass(frozen=True)
class Principal:
    """Who asks: the Cedar uid, entity and context of a token's claims (or of an anonymous request)."""

    uid: dict[str, str]
    entity: dict[str, Any]
    context: dict[str, Any]
    key: str
    """Equal for principals no policy can tell apart (the decision cache's key part)."""
    error: str | None = None
    """Why no request of this principal can be allowed (e.g. the token has no ``sub``)."""
    label: str = field(default="")
    """How the audit names it (``Client::"alice"``)."""


def principal_for(claims: Mapping[str, Any] | None, config: CedarConfig, read: frozenset[str]) -> Principal:
    """The principal of a validated token's ``claims`` (None: no token), with the claims the policies
    ``read`` only (the others cannot change a decision), so equal principals share cached decisions."""
    if claims is None:
        uid = {"type": ANONYMOUS, "id": "anonymous"}
        entity: dict[str, Any] = {"uid": uid, "attrs": {}, "parents": []}
        return Principal(uid, entity, {}, "anonymous", label='Anonymous::"anonymous"')
    attributes = {k: v for k, v in _prefixed("claim_", claims).items() if k in read}
    sub = claims.get("sub")
    uid = {"type": "Client", "id": sub if isinstance(sub, str) else ""}
    parents = [{"type": config.group_entity_type, "id": g} for g in _groups(claims, config)]
    error = None if isinstance(sub, str) and sub else "the token has no sub claim (the principal's id)"
    entity = {"uid": uid, "attrs": attributes, "parents": parents}
    key = json.dumps(entity, sort_keys=True)
    return Principal(uid, entity, attributes, key, error, label=f"Client::{_quoted(uid['id'])}")


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class Item:
    """One tool, prompt or resource a request names or a list holds, as far as policies can see it."""

    kind: str
    """``tool``, ``prompt`` or ``resource``."""
    name: str
    """The name clients see (a resource's URI)."""
    server: str
    """The MCP server it comes from (the proxy's name, or the gateway backend's)."""
    annotations: tuple[tuple[str, bool], ...] = ()
    """A tool's MCP annotation hints that are set."""
    named: bool = True
    """False: an item standing for every item the policies cannot tell apart by name (``name`` is empty
    and its Cedar id is any id of its own; see ``PolicyEngine.canonical``)."""

    @property
    def action(self) -> str:
        return ACTIONS[self.kind]

    @property
    def label(self) -> str:
        return f"{_RESOURCE_TYPES[self.kind]}::{_quoted(self.name)}"


def tool_hints(annotations: object) -> tuple[tuple[str, bool], ...]:
    """The set boolean hints of a tool's ``annotations`` (raw JSON or an SDK model)."""
    return hints_of(annotations, HINTS)


def hints_of(annotations: object, names: tuple[str, ...]) -> tuple[tuple[str, bool], ...]:
    """The hints ``names`` (in that order) set to a boolean in a tool's ``annotations`` (raw JSON or an
    SDK model: its fields are read, nothing is dumped, as a list calls this for every tool)."""
    if annotations is None or not names:
        return ()
    if isinstance(annotations, Mapping):
        return tuple([(h, v) for h in names if isinstance(v := annotations.get(h), bool)])
    return tuple(
        [(h, v) for h in names if isinstance(v := getattr(annotations, _HINT_FIELDS[h], None), bool)]
    )


def resource_entity(item: Item, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The Cedar entity of ``item`` (``arguments``: its ``arg_*`` attributes, empty for a list)."""
    uid = {"type": _RESOURCE_TYPES[item.kind], "id": item.name}
    attrs: dict[str, Any] = {**dict(item.annotations), **arguments}
    attrs.update(name=item.name, operation=_OPERATIONS[item.kind], feature=item.kind)
    if item.kind == "resource":
        attrs["uri"] = item.name
    return {"uid": uid, "attrs": attrs, "parents": [{"type": "MCP", "id": item.server}]}
