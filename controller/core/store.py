"""The indexed object store behind each informer, and the ingest transform that keeps it small.

Python dicts cost about 7x their JSON size, so every object is trimmed on the way in: ``managedFields``
and the ``last-applied-configuration`` annotation are never read by a controller and go first.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable
from sys import intern
from typing import Any

from controller.core.resources import ObjectKey

Object = dict[str, Any]
IndexFunc = Callable[[Object], list[str]]
"""An index: the values under which an object is found (e.g. its owners' uids)."""
Transform = Callable[[Object], Object]
"""Applied to every object before it is stored; may return the object it was given, modified."""

OWNER_INDEX = "owner-uid"
"""Built-in index on every resource: the uids of the object's ownerReferences."""
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def strip_unread_fields(obj: Object) -> Object:
    """The default transform: drop ``metadata.managedFields`` and kubectl's last-applied annotation."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict) and LAST_APPLIED in annotations:
            del annotations[LAST_APPLIED]
            if not annotations:
                del meta["annotations"]
    return obj


def strip_pod_spec(obj: Object) -> Object:
    """A transform for workloads (Deployment, StatefulSet) whose controllers read only metadata, status
    and the pod template's metadata: the pod spec, most of the object, is dropped (the Applier tells an
    untouched spec by ``metadata.generation``)."""
    obj = strip_unread_fields(obj)
    template = (obj.get("spec") or {}).get("template")
    if isinstance(template, dict) and "spec" in template:
        template["spec"] = {}
    return obj


INTERN_MAX = 64
"""Strings up to this length are interned when an object enters the cache (see :func:`compact`)."""


def compact(value: Any) -> Any:
    """A copy of a decoded JSON value whose keys and short strings are interned.

    ``json.loads`` makes a fresh string for every key of every object, so a thousand cached Deployments
    hold a thousand copies of ``"terminationMessagePolicy"``; interning shares one. Measured on an
    MCPServer's eight children: 50 KB of dicts per server before, 21 KB after.
    """
    if isinstance(value, dict):
        return {intern(k): compact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [compact(v) for v in value]
    if isinstance(value, str) and len(value) <= INTERN_MAX:
        return intern(value)
    return value


def owner_uids(obj: Object) -> list[str]:
    """Index function for :data:`OWNER_INDEX`."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return [str(ref["uid"]) for ref in refs if ref.get("uid")]


def resource_version(obj: Object) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


class Store:
    """Objects by key, plus secondary indexes kept in step on every change."""

    def __init__(self, indexers: dict[str, IndexFunc] | None = None) -> None:
        self._objects: dict[ObjectKey, Object] = {}
        self._indexers: dict[str, IndexFunc] = {OWNER_INDEX: owner_uids, **(indexers or {})}
        self._indexes: dict[str, dict[str, set[ObjectKey]]] = {name: {} for name in self._indexers}

    def add_indexer(self, name: str, func: IndexFunc) -> None:
        """Register an index (existing objects are indexed at once)."""
        if name in self._indexers and self._indexers[name] is not func:
            raise ValueError(f"index '{name}' is already registered with a different function")
        self._indexers[name] = func
        self._indexes[name] = {}
        for key, obj in self._objects.items():
            self._index_one(name, key, obj)

    def get(self, key: ObjectKey) -> Object | None:
        return self._objects.get(key)

    def keys(self) -> builtins.list[ObjectKey]:
        return list(self._objects)

    def list(self, namespace: str | None = None) -> builtins.list[Object]:
        if namespace is None:
            return list(self._objects.values())
        return [obj for key, obj in self._objects.items() if key.namespace == namespace]

    def by_index(self, name: str, value: str) -> builtins.list[Object]:
        if name not in self._indexes:
            raise KeyError(f"no index named '{name}'; register it with Cache.add_index before starting")
        return [self._objects[key] for key in sorted(self._indexes[name].get(value, ()))]

    def __len__(self) -> int:
        return len(self._objects)

    def upsert(self, obj: Object) -> Object | None:
        """Store ``obj``; return the previous version (None when new)."""
        key = ObjectKey.of(obj)
        old = self._objects.get(key)
        if old is not None:
            self._unindex(key, old)
        self._objects[key] = obj
        for name in self._indexers:
            self._index_one(name, key, obj)
        return old

    def delete(self, key: ObjectKey) -> Object | None:
        old = self._objects.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        return old

    def replace(
        self, objects: Iterable[Object]
    ) -> tuple[builtins.list[Object], builtins.list[tuple[Object, Object]], builtins.list[Object]]:
        """Swap the whole content (after a LIST); return (added, updated as (old, new), deleted)."""
        added: builtins.list[Object] = []
        updated: builtins.list[tuple[Object, Object]] = []
        seen: set[ObjectKey] = set()
        for obj in objects:
            key = ObjectKey.of(obj)
            seen.add(key)
            old = self.upsert(obj)
            if old is None:
                added.append(obj)
            elif resource_version(old) != resource_version(obj):
                updated.append((old, obj))
        deleted = [old for key in list(self._objects) if key not in seen and (old := self.delete(key))]
        return added, updated, deleted

    def _index_one(self, name: str, key: ObjectKey, obj: Object) -> None:
        for value in self._indexers[name](obj):
            self._indexes[name].setdefault(value, set()).add(key)

    def _unindex(self, key: ObjectKey, obj: Object) -> None:
        for name, func in self._indexers.items():
            index = self._indexes[name]
            for value in func(obj):
                bucket = index.get(value)
                if bucket is not None:
                    bucket.discard(key)
                    if not bucket:
                        del index[value]
