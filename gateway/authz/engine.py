"""The Cedar engine (``cedarpy``) behind the data plane's authorization: compile once, decide fast.

The policy set is compiled by :func:`api.authz_config.compile_policies` (the operator runs it too, so a
bad set is refused before it reaches a pod). :class:`PolicyEngine` answers decisions for a principal and
an item. A decision is a pure function of (policy set, static entities, principal, item, arguments), so
it is cached per engine (a new policy set is a new engine), keyed by what the policies read only; a list
is decided in one engine call for all its uncached items.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cedarpy

from api.authz_config import CedarConfig, PolicyError, compile_policies

from .entities import Item, Principal, resource_entity

__all__ = ["Decision", "PolicyEngine", "PolicyError"]

_CACHE_LIMIT = 16384


@dataclass(frozen=True)
class Decision:
    """One decision and why: the policies that decided (empty when none matched) or the error."""

    allowed: bool
    policies: tuple[str, ...]
    reason: str


class PolicyEngine:
    """Decisions of one compiled policy set (see the module docstring)."""

    def __init__(self, config: CedarConfig) -> None:
        self.config = config
        self.compiled = compile_policies(config)
        self._static = {_uid_key(e): e for e in self.compiled.entities if isinstance(e, dict)}
        self._cache: dict[tuple[str, Item, str], Decision] = {}

    def decide(self, principal: Principal, item: Item, arguments: Mapping[str, Any]) -> Decision:
        """May ``principal`` use ``item`` with ``arguments`` (its ``arg_*`` attributes)?"""
        key = (principal.key, item, json.dumps(arguments, sort_keys=True) if arguments else "")
        decision = self._cache.get(key)
        if decision is None:
            decision = self._evaluate(principal, [(item, arguments)])[0]
            self._remember(key, decision)
        return decision

    def decide_many(self, principal: Principal, items: Sequence[Item]) -> list[Decision]:
        """The decision of each item of a list (no arguments), the uncached ones in one engine call."""
        decisions: list[Decision | None] = [self._cache.get((principal.key, item, "")) for item in items]
        missing = [i for i, d in enumerate(decisions) if d is None]
        if missing:
            unique = list(dict.fromkeys(items[i] for i in missing))
            fresh = dict(zip(unique, self._evaluate(principal, [(item, {}) for item in unique]), strict=True))
            for i in missing:
                decisions[i] = fresh[items[i]]
            for item, decision in fresh.items():
                self._remember((principal.key, item, ""), decision)
        return [d for d in decisions if d is not None]

    def _remember(self, key: tuple[str, Item, str], decision: Decision) -> None:
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = decision

    def _evaluate(self, principal: Principal, asked: list[tuple[Item, Mapping[str, Any]]]) -> list[Decision]:
        if principal.error is not None:
            return [Decision(False, (), principal.error) for _ in asked]
        requests = []
        extra = {_uid_key(principal.entity): principal.entity}
        for item, arguments in asked:
            entity = resource_entity(item, arguments)
            extra[_uid_key(entity)] = entity
            requests.append(
                {
                    "principal": principal.uid,
                    "action": {"type": "Action", "id": item.action},
                    "resource": entity["uid"],
                    "context": {**principal.context, **arguments},
                }
            )
        results = cedarpy.is_authorized_batch(requests, self.compiled.policy_set, self._entities(extra))
        return [self._decision(result) for result in results]

    def _entities(self, extra: dict[tuple[str, str], dict[str, Any]]) -> cedarpy.Entities:
        """The static entities plus the request's; a request entity the static ones also define keeps
        their parents (``Client::"alice" in THVGroup::"admins"`` from ``entitiesJson``)."""
        clashes = extra.keys() & self._static.keys()
        if not clashes:
            return self.compiled.entities_handle.with_added_json_str(json.dumps(list(extra.values())))
        merged = dict(self._static)
        for key, entity in extra.items():
            known = self._static.get(key)
            merged[key] = entity if known is None else _merged(known, entity)
        return cedarpy.Entities.from_json_str(json.dumps(list(merged.values())))

    def _decision(self, result: cedarpy.AuthzResult) -> Decision:
        diagnostics = result.diagnostics
        names = tuple(self.compiled.labels.get(p, p) for p in diagnostics.reasons)
        if result.allowed:
            return Decision(True, names, "permitted by " + ", ".join(names))
        if names:
            return Decision(False, names, "forbidden by " + ", ".join(names))
        errors = "; ".join(str(e) for e in diagnostics.errors)
        return Decision(False, (), "no policy permits it" + (f" (policy errors: {errors})" if errors else ""))


def _uid_key(entity: Mapping[str, Any]) -> tuple[str, str]:
    uid = entity.get("uid") or {}
    return str(uid.get("type")), str(uid.get("id"))


def _merged(known: Mapping[str, Any], entity: dict[str, Any]) -> dict[str, Any]:
    """A request entity with the attributes and parents the static entities give it too."""
    parents = [*entity["parents"], *(p for p in known.get("parents", []) if p not in entity["parents"])]
    return {**entity, "attrs": {**known.get("attrs", {}), **entity["attrs"]}, "parents": parents}
