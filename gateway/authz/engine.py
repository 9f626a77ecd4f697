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

from api.authz_config import ACTIONS, CedarConfig, PolicyError, compile_policies

from .entities import HINTS, Item, Principal, resource_entity
from .slicing import PolicySlicer

__all__ = ["Decision", "ItemView", "PolicyEngine", "PolicyError"]

_CACHE_LIMIT = 16384


@dataclass(frozen=True)
class Decision:
    """One decision and why: the policies that decided (empty when none matched) or the error."""

    allowed: bool
    policies: tuple[str, ...]
    reason: str


ListedKey = tuple[str, str, tuple[tuple[str, bool], ...], bool]
"""An item's ``name``, ``server``, ``annotations`` and ``named`` (its fields after ``kind``)."""


@dataclass(frozen=True)
class ItemView:
    """What the policies that can apply to one principal and action tell apart of the items of one kind:
    the names they name (None: every name matters, as a policy reads names or the static entities may
    refer to items) and the annotation hints they read. Items equal but for the rest get one decision."""

    kind: str
    names: frozenset[str] | None
    hints: tuple[str, ...]

    def canonical(self, item: Item) -> Item:
        """``item`` without its name unless it matters, with the hints that matter only."""
        if not item.named:
            return item
        keep_name = self.names is None or item.name in self.names
        hints = tuple(h for h in item.annotations if h[0] in self.hints)
        if keep_name and hints == item.annotations:
            return item
        return Item(item.kind, item.name if keep_name else "", item.server, hints, named=keep_name)

    def item(self, key: ListedKey) -> Item:
        return Item(self.kind, *key)


_NONE_APPLIES = Decision(False, (), "no policy permits it")
_TYPES = {"tool": "Tool", "prompt": "Prompt", "resource": "Resource"}


class PolicyEngine:
    """Decisions of one compiled policy set (see the module docstring)."""

    def __init__(self, config: CedarConfig) -> None:
        self.config = config
        self.compiled = compile_policies(config)
        self._static = {_uid_key(e): e for e in self.compiled.entities if isinstance(e, dict)}
        self._cache: dict[tuple[str, Item, str], Decision] = {}
        self._views: dict[tuple[str, str], ItemView] = {}
        self.slicer = PolicySlicer(self.compiled)

    def view(self, principal: Principal, kind: str) -> ItemView:
        """What the policies that can apply to ``principal`` tell apart of items of ``kind``."""
        key = (principal.key, kind)
        view = self._views.get(key)
        if view is None:
            named = self.slicer.named(principal, ACTIONS[kind])
            read = self.compiled.attributes
            every_name = named is None or bool({"name", "uri"} & read)
            names = None if every_name else frozenset(i for t, i in named or () if t == _TYPES[kind])
            hints = tuple(h for h in HINTS if h in read) if kind == "tool" else ()
            view = ItemView(kind, names, hints)
            if len(self._views) >= _CACHE_LIMIT:
                self._views.clear()
            self._views[key] = view
        return view

    def canonical(self, principal: Principal, item: Item) -> Item:
        """An item no policy that can apply to ``principal`` tells from ``item`` (:class:`ItemView`)."""
        return self.view(principal, item.kind).canonical(item)

    def decide(self, principal: Principal, item: Item, arguments: Mapping[str, Any]) -> Decision:
        """May ``principal`` use ``item`` with ``arguments`` (its ``arg_*`` attributes)?"""
        key = (principal.key, item, json.dumps(arguments, sort_keys=True) if arguments else "")
        decision = self._cache.get(key)
        if decision is None:
            canonical = self.canonical(principal, item)
            shared = (principal.key, canonical, key[2])
            decision = self._cache.get(shared)
            if decision is None:
                decision = self._evaluate(principal, [(canonical, arguments)])[0]
                self._remember(shared, decision)
            self._remember(key, decision)
        return decision

    def decide_many(self, principal: Principal, items: Sequence[Item]) -> list[Decision]:
        """The decision of each item of a list (no arguments): items the policies cannot tell apart share
        one decision (:meth:`canonical`), and those not cached are decided in one engine call."""
        canonicals = [self.canonical(principal, item) for item in items]
        known: dict[Item, Decision] = {}
        missing: list[Item] = []
        for canonical in dict.fromkeys(canonicals):
            decision = self._cache.get((principal.key, canonical, ""))
            if decision is None:
                missing.append(canonical)
            else:
                known[canonical] = decision
        if missing:
            decided = self._evaluate(principal, [(c, {}) for c in missing])
            for canonical, decision in zip(missing, decided, strict=True):
                known[canonical] = decision
                self._remember((principal.key, canonical, ""), decision)
        return [known[c] for c in canonicals]

    def _remember(self, key: tuple[str, Item, str], decision: Decision) -> None:
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = decision

    def _evaluate(self, principal: Principal, asked: list[tuple[Item, Mapping[str, Any]]]) -> list[Decision]:
        """The decisions of ``asked``, in order: per action, the policies that can apply in one call."""
        if principal.error is not None:
            return [Decision(False, (), principal.error) for _ in asked]
        decisions: list[Decision] = [_NONE_APPLIES] * len(asked)
        for action in {item.action for item, _ in asked}:
            positions = [i for i, (item, _) in enumerate(asked) if item.action == action]
            policies = self.slicer.policies_for(principal, action)
            if policies is None:
                continue  # no policy's scope matches: denied without asking the engine
            results = self._batch(principal, [asked[i] for i in positions], policies)
            for i, decision in zip(positions, results, strict=True):
                decisions[i] = decision
        return decisions

    def _batch(
        self, principal: Principal, asked: list[tuple[Item, Mapping[str, Any]]], policies: cedarpy.PolicySet
    ) -> list[Decision]:
        requests = []
        extra = {_uid_key(principal.entity): principal.entity}
        for position, (item, arguments) in enumerate(asked):
            entity = resource_entity(item, arguments)
            if not item.named:  # a canonical item (no policy reads its name): any id of its own will do
                entity["uid"] = {**entity["uid"], "id": f"\u0000{position}"}
            extra[_uid_key(entity)] = entity
            requests.append(
                {
                    "principal": principal.uid,
                    "action": {"type": "Action", "id": item.action},
                    "resource": entity["uid"],
                    "context": {**principal.context, **arguments},
                }
            )
        results = cedarpy.is_authorized_batch(requests, policies, self._entities(extra))
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
