"""Writes from reconcilers: server-side apply that skips itself when nothing would change.

Steady state must be zero writes. ``Applier.apply`` remembers a hash of the body it last applied per
object; it skips the PATCH when the new body hashes the same and the cached object still carries it
(either nothing touched the object since our apply, or every field we own still has our value).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from controller.core.cache import Cache, NotWatchedError
from controller.core.client import MERGE_PATCH, KubeClient
from controller.core.objects import Object, carries
from controller.core.resources import (
    CONFIGMAP,
    DEPLOYMENT,
    EVENT,
    LEASE,
    NAMESPACE,
    POD,
    ROLE,
    ROLEBINDING,
    SECRET,
    SERVICE,
    SERVICEACCOUNT,
    STATEFULSET,
    Resource,
)

BUILTIN_RESOURCES = (
    DEPLOYMENT,
    STATEFULSET,
    SERVICE,
    CONFIGMAP,
    SECRET,
    SERVICEACCOUNT,
    POD,
    NAMESPACE,
    EVENT,
    ROLE,
    ROLEBINDING,
    LEASE,
)

_SlotKey = tuple[Resource, str, str, str]


def body_hash(body: Object) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class Applier:
    """apply / apply_status / delete / add_finalizer / remove_finalizer, all through one client."""

    def __init__(self, client: KubeClient, cache: Cache) -> None:
        self.client = client
        self.cache = cache
        self._last: dict[_SlotKey, tuple[str, str]] = {}  # slot -> (body hash, resourceVersion after it)
        self._by_kind: dict[tuple[str, str], Resource] = {
            (r.api_version, r.kind): r for r in BUILTIN_RESOURCES
        }
        self.skipped = 0
        """How many applies were skipped as unchanged (for tests and debugging)."""

    def register(self, resource: Resource) -> None:
        """Make ``apply(obj)`` recognise ``resource`` from the object's apiVersion and kind."""
        self._by_kind[(resource.api_version, resource.kind)] = resource

    def resource_of(self, obj: Object) -> Resource:
        key = (str(obj.get("apiVersion")), str(obj.get("kind")))
        resource = self._by_kind.get(key)
        if resource is None:
            for known in self.cache.resources():
                self._by_kind.setdefault((known.api_version, known.kind), known)
            resource = self._by_kind.get(key)
        if resource is None:
            raise ValueError(
                f"unknown kind {key[1]} ({key[0]}): pass resource= or call Applier.register(resource) first"
            )
        return resource

    async def apply(self, obj: Object, resource: Resource | None = None) -> Object | None:
        """Server-side apply ``obj`` (force, manager ``mcp-operator``); None when skipped as unchanged."""
        resource = resource or self.resource_of(obj)
        body = {**obj, "apiVersion": resource.api_version, "kind": resource.kind}
        return await self._apply(resource, body, "", body)

    async def apply_status(
        self, obj_ref: Object, status: dict[str, Any], resource: Resource | None = None
    ) -> Object | None:
        """Apply ``status`` to the ``/status`` subresource of the object ``obj_ref`` names."""
        resource = resource or self.resource_of(obj_ref)
        meta = obj_ref.get("metadata") or {}
        ident: dict[str, Any] = {"name": meta["name"]}
        if resource.namespaced:
            ident["namespace"] = meta["namespace"]
        body = {
            "apiVersion": resource.api_version,
            "kind": resource.kind,
            "metadata": ident,
            "status": status,
        }
        return await self._apply(resource, body, "status", {"status": status})

    async def delete(
        self, resource: Resource, namespace: str | None, name: str, *, uid: str | None = None
    ) -> bool:
        """Delete (background propagation); False when already gone."""
        self._last.pop((resource, namespace or "", name, ""), None)
        self._last.pop((resource, namespace or "", name, "status"), None)
        return await self.client.delete(resource, namespace, name, uid=uid)

    async def add_finalizer(self, obj: Object, finalizer: str, resource: Resource | None = None) -> bool:
        """Add ``finalizer`` (optimistic merge patch on resourceVersion); False when already present."""
        finalizers = list((obj.get("metadata") or {}).get("finalizers") or [])
        if finalizer in finalizers:
            return False
        await self._patch_finalizers(obj, [*finalizers, finalizer], resource)
        return True

    async def remove_finalizer(self, obj: Object, finalizer: str, resource: Resource | None = None) -> bool:
        """Remove ``finalizer`` (optimistic merge patch); False when it was not there."""
        finalizers = list((obj.get("metadata") or {}).get("finalizers") or [])
        if finalizer not in finalizers:
            return False
        await self._patch_finalizers(obj, [f for f in finalizers if f != finalizer], resource)
        return True

    async def _patch_finalizers(self, obj: Object, finalizers: list[str], resource: Resource | None) -> None:
        resource = resource or self.resource_of(obj)
        meta = obj["metadata"]
        patch = {"metadata": {"finalizers": finalizers, "resourceVersion": meta["resourceVersion"]}}
        await self.client.patch(resource, meta.get("namespace"), meta["name"], patch, MERGE_PATCH)

    async def _apply(
        self, resource: Resource, body: Object, subresource: str, owned: Object
    ) -> Object | None:
        meta = body.get("metadata") or {}
        namespace = str(meta.get("namespace") or "") if resource.namespaced else ""
        slot: _SlotKey = (resource, namespace, str(meta.get("name")), subresource)
        digest = body_hash(body)
        last = self._last.get(slot)
        if last is not None and last[0] == digest:
            cached = self._cached(resource, namespace, slot[2])
            if cached is not None and (
                str((cached.get("metadata") or {}).get("resourceVersion")) == last[1]
                or carries(cached, owned)
            ):
                self.skipped += 1
                return None
        result = await self.client.apply(resource, body, subresource=subresource)
        self._last[slot] = (digest, str((result.get("metadata") or {}).get("resourceVersion", "")))
        return result

    def _cached(self, resource: Resource, namespace: str, name: str) -> Object | None:
        try:
            return self.cache.get(resource, namespace or None, name)
        except NotWatchedError:
            return None
