"""The policies that can apply to one principal and action, by their scopes (``principal in ...``,
``action == ...``): evaluating those few instead of the whole set gives the same decision, since a policy
whose scope does not match a request is never satisfied, and keeps a decision fast with many policies.

Scopes are matched exactly as Cedar does: ``==`` on the uid, ``in`` on the uid and its ancestors (the
token's groups and, through the static entities, their parents), ``is`` on the type. When the static
entities define actions (action groups), actions are not used to slice. Policies are indexed by the uid
or type their principal scope names, so a slice costs lookups for the principal and its ancestors.
"""

from __future__ import annotations

import json
from collections import defaultdict
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
    """Per (principal, action): the policy set to evaluate (None when no policy can apply) and the entity
    uids those policies name."""

    def __init__(self, compiled: CompiledPolicies) -> None:
        self.compiled = compiled
        self._parents: dict[Uid, list[Uid]] = {
            _uid(e["uid"]): [_uid(p) for p in e.get("parents") or []]
            for e in compiled.entities
            if isinstance(e, dict) and isinstance(e.get("uid"), dict)
        }
        self._slice_actions = not any(uid[0] == "Action" for uid in self._parents)
        self._static_refers = '"__entity"' in json.dumps(compiled.entities) or any(
            uid[0] in _ITEM_TYPES for uid in self._parents
        )
        self._any: list[str] = []
        self._by_uid: dict[Uid, list[str]] = defaultdict(list)
        """Policies whose principal scope is ``== uid``, ``in uid`` or ``is T in uid``."""
        self._by_type: dict[str, list[str]] = defaultdict(list)
        """Policies whose principal scope is ``is T``."""
        self._named = {
            pid: frozenset(map(_pst_uid, pst.entity_uids(p))) for pid, p in compiled.policies.items()
        }
        for pid, policy in compiled.policies.items():
            scope = policy.principal
            entity = getattr(scope, "entity", None)
            if isinstance(scope, pst.ScopeIs):
                self._by_type[str(scope.entity_type)].append(pid)
            elif isinstance(entity, pst.EntityUid):
                self._by_uid[_pst_uid(entity)].append(pid)
            else:
                self._any.append(pid)
        self._slices: dict[tuple[str, str], tuple[cedarpy.PolicySet | None, frozenset[Uid] | None]] = {}
        self._sets: dict[tuple[str, ...], cedarpy.PolicySet] = {}

    def policies_for(self, principal: Principal, action: str) -> cedarpy.PolicySet | None:
        return self._slice(principal, action)[0]

    def named(self, principal: Principal, action: str) -> frozenset[Uid] | None:
        """The entity uids the policies that can apply name (None: every uid may matter, because the
        static entities refer to entities or define items). An item whose uid is not named, with the same
        server and read attributes as another, gets the same decision."""
        return self._slice(principal, action)[1]

    def _slice(
        self, principal: Principal, action: str
    ) -> tuple[cedarpy.PolicySet | None, frozenset[Uid] | None]:
        key = (principal.key, action)
        found = self._slices.get(key)
        if found is None:
            kept = [pid for pid in self._candidates(principal) if self._matches(pid, principal, action)]
            named = None if self._static_refers else frozenset().union(*(self._named[p] for p in kept))
            found = (self._policy_set(kept), named)
            if len(self._slices) >= _LIMIT:
                self._slices.clear()
            self._slices[key] = found
        return found

    def _candidates(self, principal: Principal) -> list[str]:
        me = _uid(principal.uid)
        ancestors = self._ancestors(
            [_uid(p) for p in principal.entity.get("parents") or []] + self._parents.get(me, [])
        )
        found = [*self._any, *self._by_type.get(me[0], [])]
        for uid in (me, *ancestors):
            found += self._by_uid.get(uid, [])
        return sorted(set(found), key=lambda pid: int(pid.removeprefix("policy")))

    def _matches(self, pid: str, principal: Principal, action: str) -> bool:
        """The exact principal scope check (``is T in uid`` also needs the type) and the action scope."""
        policy = self.compiled.policies[pid]
        scope = policy.principal
        if isinstance(scope, pst.ScopeIsIn) and str(scope.entity_type) != principal.uid["type"]:
            return False
        if isinstance(scope, pst.ScopeEq) and _pst_uid(scope.entity) != _uid(principal.uid):  # type: ignore[arg-type]
            return False
        return self._action_matches(policy.action, action)

    def _policy_set(self, kept: list[str]) -> cedarpy.PolicySet | None:
        """The policies ``kept`` as one set, parsed once for every principal they are kept for."""
        if not kept:
            return None
        if len(kept) == len(self.compiled.policies):
            return self.compiled.policy_set
        key = tuple(kept)
        found = self._sets.get(key)
        if found is None:
            texts = self.compiled.json_policies
            static = ",".join(f"{json.dumps(pid)}:{texts[pid]}" for pid in kept)
            found = cedarpy.PolicySet.from_json_str(
                f'{{"staticPolicies":{{{static}}},"templates":{{}},"templateLinks":[]}}'
            )
            if len(self._sets) >= _LIMIT:
                self._sets.clear()
            self._sets[key] = found
        return found

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
