"""Writes from reconcilers: server-side apply that skips itself when nothing would change.

Steady state must be zero writes. ``Applier.apply`` remembers a hash of the body it last applied per
object; it skips the PATCH when the new body hashes the same and the cached object still carries it
(either nothing touched the object since our apply, or every field we own still has our value).
The hash also travels with the object (:data:`APPLIED_HASH_ANNOTATION`), so a new process (a restart,
a new leader, an upgrade) skips an object whose cached copy says it was applied with this very body and
still carries every field of it, instead of re-applying every child once (at the client's default
20 qps, 8,000 children take 400 s). A body that differs in any way, a removed field included, hashes
differently and is applied; so is an object the cache holds without the fields it would need to check
(a workload whose pod spec the cache drops).
It also skips when the cache has not yet caught up with that apply (the object is older than our write,
or not cached yet and not deleted since): the watch event of our own write is on its way and will
trigger the reconcile that checks again, so re-sending the same body would only add a write.

``Applier.echo`` tells controllers whether a watch event is the echo of our own last apply (which needs
no reconcile). The API server sends a write's watch event and its answer at about the same moment on
two connections, so the event is often read first; an event for an object whose apply still awaits its
answer is held and judged once the answer (or the failure) is in.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import Any

import orjson

from controller.core.cache import Cache, NotWatchedError
from controller.core.client import MERGE_PATCH, KubeClient
from controller.core.objects import Object, carries
from controller.core.resources import BUILTIN_RESOURCES, Resource

_SlotKey = tuple[Resource, str, str, str]
_Ident = tuple[Resource, str, str]
Settle = Callable[[bool], None]
"""Called once with whether a held watch event was the echo of our own apply (see ``Applier.echo``)."""


APPLIED_HASH_ANNOTATION = "mcp-operator.dev/applied-hash"
"""Annotation on every object the operator applies: :func:`body_hash` of the body without it."""


def body_hash(body: Object) -> str:
    """A digest of ``body`` independent of key order and of the process (sorted keys, SHA-256)."""
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def with_applied_hash(body: Object, digest: str) -> Object:
    """``body`` with :data:`APPLIED_HASH_ANNOTATION` set to ``digest`` (a copy; ``body`` is untouched)."""
    meta = dict(body.get("metadata") or {})
    meta["annotations"] = {**(meta.get("annotations") or {}), APPLIED_HASH_ANNOTATION: digest}
    return {**body, "metadata": meta}


class Applier:
    """apply / apply_status / delete / add_finalizer / remove_finalizer, all through one client."""

    def __init__(self, client: KubeClient, cache: Cache) -> None:
        self.client = client
        self.cache = cache
        self._last: dict[_SlotKey, tuple[str, str, str]] = {}  # slot -> (body hash, rv, generation) after it
        self._by_kind: dict[tuple[str, str], Resource] = {
            (r.api_version, r.kind): r for r in BUILTIN_RESOURCES
        }
        self._deletions_seen: set[Resource] = set()
        self._in_flight: dict[_Ident, int] = {}  # object -> applies to it awaiting their answer
        self._held: dict[_Ident, list[tuple[str, Settle]]] = {}  # object -> (event rv, settle) to judge
        self.skipped = 0
        """How many applies were skipped as unchanged (for tests and debugging)."""

    def register(self, resource: Resource) -> None:
        """Make ``apply(obj)`` recognise ``resource`` from the object's apiVersion and kind, and forget
        what was applied to an object of it once the cache sees it deleted."""
        self._by_kind[(resource.api_version, resource.kind)] = resource
        if resource not in self._deletions_seen:
            self._deletions_seen.add(resource)
            self.cache.informer(resource).add_handler(_ForgetDeleted(self, resource))

    def forget(self, resource: Resource, namespace: str | None, name: str) -> None:
        """Drop the memory of our last apply to this object (it was deleted)."""
        ns = namespace or "" if resource.namespaced else ""
        self._last.pop((resource, ns, name, ""), None)
        self._last.pop((resource, ns, name, "status"), None)

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

    def lags(self, resource: Resource, namespace: str | None, name: str) -> bool:
        """True when the cached object is older than our last write to it (spec or status): its watch
        event is on the way and brings a reconcile that reads what we wrote."""
        ns = namespace or "" if resource.namespaced else ""
        cached = self._cached(resource, ns, name)[1]
        if cached is None:
            return False
        cached_rv = str((cached.get("metadata") or {}).get("resourceVersion"))
        slots = (self._last.get((resource, ns, name, sub)) for sub in ("", "status"))
        return any(last is not None and _older(cached_rv, last[1]) for last in slots)

    def echo(self, resource: Resource, obj: Object, settle: Settle) -> bool | None:
        """Whether a watch event carrying ``obj`` is the echo of our own last apply to it.

        True or False when that is known now. None while an apply to the object awaits its answer: the
        event may be that apply's echo, read before the answer. ``settle(is_echo)`` is then called once,
        when the last such apply has its answer (is_echo when the event carries the resourceVersion we
        last wrote) or failed (judged against what we wrote before).
        """
        rv, ident = _identify(resource, obj)
        if not rv:
            return False
        if ident in self._in_flight:
            self._held.setdefault(ident, []).append((rv, settle))
            return None
        return self._is_last(ident, rv)

    def _is_last(self, ident: _Ident, rv: str) -> bool:
        resource, ns, name = ident
        slots = (self._last.get((resource, ns, name, sub)) for sub in ("", "status"))
        return any(last is not None and last[1] == rv for last in slots)

    async def apply(self, obj: Object, resource: Resource | None = None) -> Object | None:
        """Server-side apply ``obj`` (force, manager ``mcp-operator``); None when skipped as unchanged,
        otherwise the object's kind, identity, versions and status as the server answered (``applied``)."""
        resource = resource or self.resource_of(obj)
        body = {**obj, "apiVersion": resource.api_version, "kind": resource.kind}
        digest = body_hash(body)
        stamped = with_applied_hash(body, digest)
        return await self._apply(resource, stamped, "", stamped, digest)

    async def apply_all(self, objs: list[Object]) -> list[Object | None]:
        """Apply independent objects concurrently (one round trip of latency instead of one per object);
        results in order, None for a skipped one. A failure cancels the rest and is raised."""
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self.apply(obj)) for obj in objs]
        except ExceptionGroup as failed:  # the first failure as itself (an ApiError names the object)
            raise failed.exceptions[0] from failed
        return [task.result() for task in tasks]

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
        return await self._apply(resource, body, "status", {"status": status}, body_hash(body))

    async def delete(
        self, resource: Resource, namespace: str | None, name: str, *, uid: str | None = None
    ) -> bool:
        """Delete (background propagation); False when already gone."""
        self.forget(resource, namespace, name)
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
        self, resource: Resource, body: Object, subresource: str, owned: Object, digest: str
    ) -> Object | None:
        meta = body.get("metadata") or {}
        namespace = str(meta.get("namespace") or "") if resource.namespaced else ""
        slot: _SlotKey = (resource, namespace, str(meta.get("name")), subresource)
        last = self._last.get(slot)
        if last is None and not subresource and self._applied_before(slot, owned, digest):
            self.skipped += 1
            return None
        if last is not None and last[0] == digest:
            watched, cached = self._cached(resource, namespace, slot[2])
            if cached is None:
                # Not cached yet: our own write's event is still on its way (a deletion would have made
                # us forget the slot). Outside the watched namespaces we cannot tell: apply.
                unchanged = watched and resource in self._deletions_seen
            else:
                cached_meta = cached.get("metadata") or {}
                cached_rv = str(cached_meta.get("resourceVersion"))
                unchanged = (
                    cached_rv == last[1]
                    or _older(cached_rv, last[1])
                    # Spec untouched since our apply (same generation): only metadata can differ. This is
                    # what lets the cache drop a workload's pod spec (see store.strip_pod_spec).
                    or (
                        bool(last[2])
                        and str(cached_meta.get("generation", "")) == last[2]
                        and carries(cached_meta, owned.get("metadata") or {})
                    )
                    or carries(cached, owned)
                )
            if unchanged:
                self.skipped += 1
                return None
        ident: _Ident = slot[:3]
        self._in_flight[ident] = self._in_flight.get(ident, 0) + 1
        try:
            result = applied(await self.client.apply(resource, body, subresource=subresource))
            result_meta = result["metadata"]
            generation = str(result_meta.get("generation", "")) if not subresource else ""
            self._last[slot] = (digest, str(result_meta.get("resourceVersion", "")), generation)
        finally:
            self._answered(ident)
        return result

    def _applied_before(self, slot: _SlotKey, owned: Object, digest: str) -> bool:
        """Whether the cached object was applied with this very body (by any process: its annotation
        says so) and still carries every field of it; if so it is remembered as if we had applied it."""
        resource, namespace, name, _ = slot
        _, cached = self._cached(resource, namespace, name)
        if cached is None:
            return False
        cached_meta = cached.get("metadata") or {}
        if (cached_meta.get("annotations") or {}).get(APPLIED_HASH_ANNOTATION) != digest:
            return False
        if not carries(cached, owned):
            return False
        generation = str(cached_meta.get("generation", ""))
        self._last[slot] = (digest, str(cached_meta.get("resourceVersion", "")), generation)
        return True

    def _answered(self, ident: _Ident) -> None:
        """An apply to ``ident`` has its answer (or failed): once none is left in flight, judge the watch
        events held meanwhile."""
        left = self._in_flight[ident] - 1
        if left:
            self._in_flight[ident] = left
            return
        del self._in_flight[ident]
        for rv, settle in self._held.pop(ident, ()):
            settle(self._is_last(ident, rv))

    def _cached(self, resource: Resource, namespace: str, name: str) -> tuple[bool, Object | None]:
        """(whether the cache watches this object, the cached object or None)."""
        try:
            return True, self.cache.get(resource, namespace or None, name)
        except NotWatchedError:
            return False, None


APPLIED_METADATA = ("name", "namespace", "uid", "resourceVersion", "generation")
"""The metadata an apply hands back (see :func:`applied`)."""


def applied(answer: Object) -> Object:
    """What ``Applier.apply`` returns of the API server's answer: kind, identity, versions and status.

    The answer is the whole object with its ``managedFields``, several times what anyone reads of it;
    trimmed as soon as it is decoded, a reconcile applying eight children at once holds no more than
    one whole answer at a time.
    """
    meta = answer.get("metadata") or {}
    out: Object = {
        "apiVersion": answer.get("apiVersion"),
        "kind": answer.get("kind"),
        "metadata": {key: meta[key] for key in APPLIED_METADATA if key in meta},
    }
    if "status" in answer:
        out["status"] = answer["status"]
    return out


def _identify(resource: Resource, obj: Object) -> tuple[str, _Ident]:
    """(resourceVersion, (resource, namespace, name)) of ``obj``."""
    meta = obj.get("metadata") or {}
    ns = str(meta.get("namespace") or "") if resource.namespaced else ""
    return str(meta.get("resourceVersion") or ""), (resource, ns, str(meta.get("name")))


def _older(cached: str, ours: str) -> bool:
    """True when the cached resourceVersion predates the one our apply returned (the cache lags).

    resourceVersions are etcd revisions, increasing integers; anything else is never called older.
    """
    return cached.isdigit() and ours.isdigit() and int(cached) < int(ours)


class _ForgetDeleted:
    """Informer handler: a deleted object must be applied again, whatever we applied before."""

    def __init__(self, applier: Applier, resource: Resource) -> None:
        self._applier = applier
        self._resource = resource

    def on_add(self, obj: Object, *, initial: bool) -> None:
        pass

    def on_update(self, old: Object, new: Object, *, resync: bool) -> None:
        pass

    def on_delete(self, obj: Object) -> None:
        meta = obj.get("metadata") or {}
        self._applier.forget(self._resource, meta.get("namespace"), str(meta.get("name")))
