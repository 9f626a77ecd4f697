"""The policies that can apply to one principal and action, by their scopes (``principal in ...``,
``action == ...``): evaluating those few instead of the whole set gives the same decision, since a policy
whose scope does not match a request is never satisfied, and keeps a decision fast with many policies.

Scopes are matched exactly as Cedar does: ``==`` on the uid, ``in`` on the uid and its ancestors (the
token's groups and, through the static entities, their parents), ``is`` on the type. When the static
entities define actions (action groups), actions are not used to slice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import cedarpy
from cedarpy import pst

from api.authz_config import CompiledPolicies

from .entities import Principal

__all__ = ["PolicySlicer"]

Uid = tuple[str, str]
_LIMIT = 4096
_ITEM_TYPES = frozenset({"Tool", "Prompt", "Resource", "MCP"})


def _uid(value: Mapping[str, Any]) -> Uid:
    return str(value.get("type")), str(value.get("id"))


def _pst_uid(uid: pst.EntityUid) -> Uid:
    return str(uid.type), uid.id


class PolicySlicer:
    """Per (principal, action): the policy set to evaluate, or None when no policy can apply."""

    def __init__(self, compiled: CompiledPolicies) -> None:
        self.compiled = compiled
        self._parents: dict[Uid, list[Uid]] = {
            _uid(e["uid"]): [_uid(p) for p in e.get("parents") or []]
            for e in compiled.entities
            if isinstance(e, dict) and isinstance(e.get("uid"), dict)
        }
        self._slice_actions = not any(uid[0] == "Action" for uid in self._parents)
        self._sets: dict[tuple[str, str], cedarpy.PolicySet | None] = {}
        self._named: dict[tuple[str, str], frozenset[Uid] | None] = {}
        self._static_refers = '"__entity"' in json.dumps(compiled.entities) or any(
            uid[0] in _ITEM_TYPES for uid in self._parents
        )

    def named(self, principal: Principal, action: str) -> frozenset[Uid] | None:
        """The entity uids the policies that can apply name (None: every uid may matter, because the
        static entities refer to entities or define items). An item whose uid is not named, with the same
        server and read attributes as another, gets the same decision."""
        key = (principal.key, action)
        if key not in self._named:
            self.policies_for(principal, action)
        return self._named.get(key)

    def policies_for(self, principal: Principal, action: str) -> cedarpy.PolicySet | None:
        key = (principal.key, action)
        if key in self._sets:
            return self._sets[key]
        me = _uid(principal.uid)
        ancestors = self._ancestors(
            [_uid(p) for p in principal.entity.get("parents") or []] + self._parents.get(me, [])
        )
        kept = {
            pid: policy
            for pid, policy in self.compiled.policies.items()
            if _principal_matches(policy.principal, me, ancestors)
            and self._action_matches(policy.action, action)
        }
        if not kept:
            chosen = None
        elif len(kept) == len(self.compiled.policies):
            chosen = self.compiled.policy_set
        else:
            tree = pst.PolicySet(
                templates=pst.FrozenMap(), static_policies=pst.FrozenMap(kept), template_links=()
            )
            chosen = cedarpy.PolicySet.from_pst(tree)
        if len(self._sets) >= _LIMIT:
            self._sets.clear()
            self._named.clear()
        self._sets[key] = chosen
        uids = {_pst_uid(u) for u in pst.entity_uids(pst.FrozenMap(kept))}
        self._named[key] = None if self._static_refers else frozenset(uids)
        return chosen

    def _ancestors(self, direct: Iterable[Uid]) -> set[Uid]:
        seen: set[Uid] = set()
        todo = list(direct)
        while todo:
            uid = todo.pop()
            if uid not in seen:
                seen.add(uid)
                todo.extend(self._parents.get(uid, []))
        return seen

    def _action_matches(self, scope: object, action: str) -> bool:
        if not self._slice_actions or isinstance(scope, pst.ScopeAny):
            return True
        if isinstance(scope, pst.ActionEq):
            return _pst_uid(scope.entity) == ("Action", action)
        if isinstance(scope, pst.ActionIn):
            return ("Action", action) in {_pst_uid(e) for e in scope.entities}
        return True  # a scope this module does not know: keep the policy


def _principal_matches(scope: object, me: Uid, ancestors: set[Uid]) -> bool:
    if isinstance(scope, pst.ScopeEq) and isinstance(scope.entity, pst.EntityUid):
        return _pst_uid(scope.entity) == me
    if isinstance(scope, pst.ScopeIn) and isinstance(scope.entity, pst.EntityUid):
        target = _pst_uid(scope.entity)
        return target == me or target in ancestors
    if isinstance(scope, pst.ScopeIs):
        return str(scope.entity_type) == me[0]
    if isinstance(scope, pst.ScopeIsIn) and isinstance(scope.entity, pst.EntityUid):
        target = _pst_uid(scope.entity)
        return str(scope.entity_type) == me[0] and (target == me or target in ancestors)
    return True  # ScopeAny, or a scope this module does not know: keep the policy
