"""The Cedar authorization settings the proxy and the gateway enforce (their config files' ``authz`` key),
and their compilation: :func:`compile_policies` parses and checks them, raising :class:`PolicyError`
naming the policy (``policies[i]``) and the line; the operator runs it before rendering, the data plane
before putting a set in force.

The operator renders it from a workload's ``authzConfig`` (inline or a ConfigMap) or ``authzConfigRef``
(an MCPAuthzConfig); users may write it by hand. The policy language, the entities and how a decision
is reached: docs/auth.md ("Authorization"). Decisions: :mod:`gateway.authz`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import cedarpy
from cedarpy import pst
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

__all__ = [
    "ACTIONS",
    "ANONYMOUS",
    "DEFAULT_GROUP_ENTITY_TYPE",
    "GROUP_CLAIM_DEFAULTS",
    "KNOWN_ACTIONS",
    "CedarConfig",
    "CompiledPolicies",
    "PolicyError",
    "compile_policies",
]

DEFAULT_GROUP_ENTITY_TYPE = "THVGroup"
"""The entity type of the groups a principal is in (ToolHive's name, so its policies port unchanged)."""
GROUP_CLAIM_DEFAULTS = ("groups", "roles", "cognito:groups")
"""Claims read for groups, first present wins, when ``groupClaimName`` is not set (as ToolHive)."""

ANONYMOUS = "Anonymous"
"""The entity type of a request without a validated token."""
ACTIONS = {"tool": "call_tool", "prompt": "get_prompt", "resource": "read_resource"}
"""The action deciding whether a principal may use (and so see) an item of each kind."""
ENTITY_TYPE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


class CedarConfig(BaseModel):
    """Cedar policies and the static entities they refer to (ToolHive's ``cedarv1`` options)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, validate_by_name=True
    )

    policies: tuple[str, ...] = Field(min_length=1)
    """Cedar policy texts; any request no ``permit`` matches is denied, and a ``forbid`` always wins."""
    entities_json: str = "[]"
    """Static entities (Cedar JSON), e.g. ``THVGroup`` parents of other groups."""
    group_claim_name: str | None = Field(default=None, max_length=253)
    """The claim that lists the principal's groups; default: the first of ``groups``, ``roles``,
    ``cognito:groups`` present in the token."""
    role_claim_name: str | None = Field(default=None, max_length=253)
    """A second claim whose values are groups too (roles)."""
    group_entity_type: str = Field(
        default=DEFAULT_GROUP_ENTITY_TYPE, max_length=63, pattern=ENTITY_TYPE_PATTERN
    )
    """The entity type of groups (``principal in THVGroup::"eng"``)."""


KNOWN_ACTIONS = frozenset({*ACTIONS.values(), "list_tools", "list_prompts", "list_resources"})
"""Action ids policies may name (the ``list_*`` ones of ToolHive are accepted; lists are filtered with
the per-item actions)."""
_ENTITY_TYPES = frozenset({"Client", ANONYMOUS, "Action", "Tool", "Prompt", "Resource", "FeatureType", "MCP"})


class PolicyError(ValueError):
    """The policy set cannot be used; the message names the policy (``policies[i]``) and the line."""


def _line_of(text: str, message: str) -> int:
    """The 1-based line of a parse error: the first line whose prefix of the text fails with the same
    message (Cedar's messages carry no position; a prefix cut before the fault fails differently)."""
    lines = text.split("\n")
    for count in range(1, len(lines) + 1):
        try:
            cedarpy.PolicySet.from_str("\n".join(lines[:count]))
        except ValueError as exc:
            if str(exc).strip().replace("\n", " ") == message:
                return count
    return 1


def _nodes(node: object) -> Iterator[object]:
    """``node`` and every PST node under it."""
    yield node
    if isinstance(node, Mapping):
        children: Iterable[object] = node.values()
    elif isinstance(node, tuple):
        children = node
    elif dataclasses.is_dataclass(node) and not isinstance(node, type):
        children = (getattr(node, f.name) for f in dataclasses.fields(node))
    else:
        return
    for child in children:
        yield from _nodes(child)


def _attributes(policies: Iterable[object]) -> frozenset[str]:
    """Every attribute name the policies read or test (``x.attr``, ``x has attr``)."""
    names: set[str] = set()
    for node in _nodes(tuple(policies)):
        if isinstance(node, pst.GetAttr):
            names.add(node.attr)
        elif isinstance(node, pst.HasAttr):
            names.update(node.attrs)
    return frozenset(names)


def _check_names(index: int, text: str, parsed: pst.PolicySet, known_types: frozenset[str]) -> list[str]:
    """Refuse a policy naming an entity type the data plane never sends, or an action it never sends in a
    ``forbid`` (a typo would silently forbid nothing) or in a condition (``unless`` such an action would
    always hold); a ``permit`` naming such an action in its scope is accepted, as ToolHive accepts it (it
    can only deny more), and returned as a notice: it never matches."""
    notices = []
    for policy in [*parsed.static_policies.values(), *parsed.templates.values()]:
        for name in {str(n) for n in _nodes(policy) if isinstance(n, pst.EntityType)}:
            if name not in known_types:
                raise PolicyError(
                    f"policies[{index}] line {_first_line(text, name)}: unknown entity type {name!r}; "
                    f"requests use {', '.join(sorted(known_types))}"
                )
        in_conditions = {n.id for n in _nodes(policy.clauses) if isinstance(n, pst.EntityUid)}
        for uid in pst.entity_uids(policy):
            if str(uid.type) != "Action" or uid.id in KNOWN_ACTIONS:
                continue
            where = f"policies[{index}] line {_first_line(text, uid.id)}"
            action = f"Action::{json.dumps(uid.id)}"
            actions = ", ".join(sorted(KNOWN_ACTIONS))
            if policy.effect == "forbid":
                raise PolicyError(
                    f"{where}: unknown action {action} in a forbid: it would never match, so it would "
                    f"forbid nothing (ToolHive accepts it and forbids nothing); actions are {actions}"
                )
            if uid.id in in_conditions:
                raise PolicyError(
                    f"{where}: unknown action {action} in a condition: requests never carry it, so the "
                    f"condition would not mean what it says; actions are {actions}"
                )
            notices.append(
                f"{where}: unknown action {action}: requests never carry it, so this permit never matches "
                f"it (as in ToolHive) and grants nothing by it; actions are {actions} (a tool call is "
                'Action::"call_tool")'
            )
    return notices


def _first_line(text: str, needle: str) -> int:
    at = text.find(needle)
    return text.count("\n", 0, at) + 1 if at >= 0 else 1


@dataclass(frozen=True)
class CompiledPolicies:
    policy_set: cedarpy.PolicySet
    labels: dict[str, str]
    """Cedar's positional policy id -> how audits and errors name it (its ``@id``, else ``policies[i]``)."""
    entities: list[dict[str, Any]]
    entities_handle: cedarpy.Entities
    attributes: frozenset[str]
    """The attribute names policies read: only these claims and arguments can change a decision."""
    policies: Mapping[str, pst.Template]
    """Each policy by Cedar's positional id (the ids of ``policy_set``), as PST nodes."""
    json_policies: Mapping[str, str]
    """The same, each as Cedar JSON text (a subset is parsed back into a policy set with its ids kept)."""
    never_matching: tuple[str, ...] = ()
    """What in the policies can never match (``policies[i] line n: ...``): valid, reported to the user."""


def compile_policies(config: CedarConfig) -> CompiledPolicies:
    """Parse and check every policy and the static entities; raises :class:`PolicyError`."""
    try:
        entities = json.loads(config.entities_json)
        if not isinstance(entities, list):
            raise ValueError("it must be a JSON list of entities")
        handle = cedarpy.Entities.from_json_str(config.entities_json)
    except ValueError as exc:
        raise PolicyError(f"entitiesJson: {exc}") from exc
    known_types = (
        _ENTITY_TYPES
        | {config.group_entity_type}
        | {str((e.get("uid") or {}).get("type")) for e in entities if isinstance(e, dict)}
    )
    labels: dict[str, str] = {}
    attributes: set[str] = set()
    never_matching: list[str] = []
    for index, text in enumerate(config.policies):
        try:
            parsed = cedarpy.PolicySet.from_str(text).to_pst()
        except ValueError as exc:
            message = str(exc).strip().replace("\n", " ")
            raise PolicyError(f"policies[{index}] line {_line_of(text, message)}: {message}") from exc
        if parsed.templates:
            raise PolicyError(f"policies[{index}]: templates (?principal / ?resource) are not supported")
        if not parsed.static_policies:
            raise PolicyError(f"policies[{index}]: holds no policy")
        never_matching += _check_names(index, text, parsed, known_types)
        attributes |= _attributes(parsed.static_policies.values())
        many = len(parsed.static_policies) > 1
        for number, policy in enumerate(parsed.static_policies.values()):
            default = f"policies[{index}]#{number}" if many else f"policies[{index}]"
            labels[f"policy{len(labels)}"] = policy.annotations.get("id") or default
    policy_set = cedarpy.PolicySet.from_str("\n".join(config.policies))
    tree = policy_set.to_pst().static_policies
    est = json.loads(cedarpy.policies_to_json_str("\n".join(config.policies)))["staticPolicies"]
    est = {pid: json.dumps(policy) for pid, policy in est.items()}
    return CompiledPolicies(
        policy_set, labels, entities, handle, frozenset(attributes), tree, est, tuple(never_matching)
    )
