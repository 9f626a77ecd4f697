"""The Applier's write skipping: unchanged bodies, a cache that lags our own write, deletions."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from controller.core.apply import APPLIED_HASH_ANNOTATION, Applier, body_hash, with_applied_hash
from controller.core.cache import Cache
from controller.core.client import ApiError, KubeClient
from controller.core.resources import CONFIGMAP, ObjectKey
from kube.transport import Request
from tests.support.fake_kube import FakeResponse, FunctionTransport

Obj = dict[str, Any]


def cm(rv: str | None = None, value: str = "1", namespace: str = "ns") -> Obj:
    meta: Obj = {"name": "cm", "namespace": namespace}
    if rv is not None:
        meta["resourceVersion"] = rv
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": value}}


def as_applied(obj: Obj, body: Obj | None = None) -> Obj:
    """``obj`` as the API server holds it after our apply of ``body`` (default: ``cm()``): stamped with
    the applied body's hash."""
    return with_applied_hash(obj, body_hash(body if body is not None else cm()))


def make(namespaces: list[str] | None = None) -> tuple[Applier, Cache, FunctionTransport]:
    versions = itertools.count(10)

    def answer(request: Request) -> FakeResponse:
        body = dict(request.body)
        body["metadata"] = {**body["metadata"], "resourceVersion": str(next(versions))}
        return FakeResponse(200, body)

    transport = FunctionTransport(answer)
    kube = KubeClient(transport, qps=0)
    cache = Cache(kube, namespaces)
    applier = Applier(kube, cache)
    applier.register(CONFIGMAP)
    return applier, cache, transport


def cache_event(cache: Cache, kind: str, obj: Obj) -> None:
    """What the informer does for a watch event: update the store, tell the handlers."""
    informer = cache.informer(CONFIGMAP)
    store = informer.store_for(obj["metadata"]["namespace"])
    assert store is not None
    if kind == "DELETED":
        store.delete(ObjectKey.of(obj))
        for handler in informer.handlers:
            handler.on_delete(obj)
    else:
        store.upsert(obj)


async def test_the_same_body_is_not_sent_again_while_the_cache_has_not_seen_our_write() -> None:
    applier, _, transport = make()
    assert await applier.apply(cm()) is not None
    assert await applier.apply(cm()) is None  # our write's watch event has not arrived yet
    assert len(transport.requests) == 1


async def test_a_cache_older_than_our_write_does_not_cause_a_second_write() -> None:
    applier, cache, transport = make()
    cache_event(cache, "ADDED", cm("5", value="old"))  # what the cache held before our apply
    await applier.apply(cm())
    assert await applier.apply(cm()) is None
    assert len(transport.requests) == 1


async def test_a_newer_object_without_our_fields_is_applied_again() -> None:
    applier, cache, transport = make()
    await applier.apply(cm())
    cache_event(cache, "MODIFIED", cm("99", value="someone else's"))
    assert await applier.apply(cm()) is not None
    assert len(transport.requests) == 2


async def test_a_newer_object_still_carrying_our_fields_is_skipped() -> None:
    applier, cache, transport = make()
    await applier.apply(cm())
    theirs = as_applied(cm("99"))
    theirs["metadata"]["labels"] = {"added-by": "someone else"}
    cache_event(cache, "MODIFIED", theirs)
    assert await applier.apply(cm()) is None
    assert len(transport.requests) == 1


async def test_a_deleted_object_is_applied_again() -> None:
    applier, cache, transport = make()
    await applier.apply(cm())
    cache_event(cache, "ADDED", cm("10"))
    cache_event(cache, "DELETED", cm("11"))
    assert await applier.apply(cm()) is not None
    assert len(transport.requests) == 2


async def test_objects_outside_the_watched_namespaces_are_always_applied() -> None:
    applier, _, transport = make(namespaces=["watched"])
    await applier.apply(cm(namespace="elsewhere"))
    await applier.apply(cm(namespace="elsewhere"))
    assert len(transport.requests) == 2


async def test_a_changed_body_is_always_sent() -> None:
    applier, _, transport = make()
    await applier.apply(cm(value="1"))
    await applier.apply(cm(value="2"))
    assert [r.body["data"]["k"] for r in transport.requests] == ["1", "2"]


async def test_lags_while_the_cache_predates_our_last_write() -> None:
    applier, cache, _ = make()
    cache_event(cache, "ADDED", cm("5"))
    assert not applier.lags(CONFIGMAP, "ns", "cm")
    await applier.apply(cm())  # answered with resourceVersion 10
    assert applier.lags(CONFIGMAP, "ns", "cm")
    cache_event(cache, "MODIFIED", cm("10"))
    assert not applier.lags(CONFIGMAP, "ns", "cm")


async def test_a_workload_cached_without_its_pod_spec_is_skipped_while_its_generation_holds() -> None:
    def answer(request: Request) -> FakeResponse:
        body = dict(request.body)
        body["metadata"] = {**body["metadata"], "resourceVersion": "10", "generation": 3}
        return FakeResponse(200, body)

    transport = FunctionTransport(answer)
    kube = KubeClient(transport, qps=0)
    cache = Cache(kube)
    applier = Applier(kube, cache)
    applier.register(CONFIGMAP)
    desired = {**cm(), "spec": {"template": {"spec": {"containers": [{"name": "mcp"}]}}}}
    await applier.apply(desired)
    # A status update by the workload's controller: new resourceVersion, same generation, pod spec
    # dropped by the cache's transform.
    seen = as_applied({**cm("11"), "spec": {"template": {"spec": {}}}}, desired)
    seen["metadata"]["generation"] = 3
    cache_event(cache, "MODIFIED", seen)
    assert await applier.apply(desired) is None
    seen = {**cm("12"), "spec": {"template": {"spec": {}}}}
    seen["metadata"]["generation"] = 4  # someone changed the spec
    cache_event(cache, "MODIFIED", seen)
    assert await applier.apply(desired) is not None
    assert len(transport.requests) == 2


async def test_apply_all_applies_each_object_and_keeps_the_order() -> None:
    applier, _, transport = make()
    other = cm(value="2")
    other["metadata"]["name"] = "other"
    results = await applier.apply_all([cm(), other])
    assert [r["metadata"]["name"] for r in results if r] == ["cm", "other"]
    assert sorted(r.body["metadata"]["name"] for r in transport.requests) == ["cm", "other"]


async def test_apply_all_raises_the_failure_itself() -> None:
    transport = FunctionTransport(lambda _: FakeResponse(422, {"reason": "Invalid", "message": "bad"}))
    kube = KubeClient(transport, qps=0)
    applier = Applier(kube, Cache(kube))
    applier.register(CONFIGMAP)
    with pytest.raises(ApiError, match="422 Invalid: bad"):
        await applier.apply_all([cm()])


async def test_apply_returns_identity_versions_and_status_only() -> None:
    def answer(request: Request) -> FakeResponse:
        body = dict(request.body)
        body["metadata"] = {
            **body["metadata"], "uid": "u1", "resourceVersion": "7", "generation": 2,
            "managedFields": [{"manager": "mcp-operator", "fieldsV1": {"f:data": {}}}],
            "labels": {"a": "b"},
        }  # fmt: skip
        body["status"] = {"readyReplicas": 1}
        return FakeResponse(200, body)

    kube = KubeClient(FunctionTransport(answer), qps=0)
    applier = Applier(kube, Cache(kube))
    applier.register(CONFIGMAP)
    # The whole answer (managedFields, spec or data) is dropped as soon as it is decoded: a reconcile
    # applying its children at once holds only what callers read of each.
    assert await applier.apply(cm()) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm", "namespace": "ns", "uid": "u1", "resourceVersion": "7", "generation": 2},
        "status": {"readyReplicas": 1},
    }


# ------------------------------------------------------------------ a new process (restart, new leader)


async def applied_by_an_earlier_process(value: str = "1") -> Obj:
    """The object as an earlier operator process left it: applied with ``cm(value=value)``."""
    earlier, _, transport = make()
    await earlier.apply(cm(value=value))
    live: Obj = transport.requests[0].body
    live["metadata"]["resourceVersion"] = "9"
    return live


async def test_every_applied_object_carries_the_hash_of_its_body() -> None:
    applier, _, transport = make()
    await applier.apply(cm())
    sent = transport.requests[0].body
    assert sent["metadata"]["annotations"] == {APPLIED_HASH_ANNOTATION: body_hash(cm())}
    assert sent["data"] == {"k": "1"}


async def test_a_new_process_does_not_reapply_what_an_earlier_one_applied() -> None:
    live = await applied_by_an_earlier_process()
    applier, cache, transport = make()  # the restarted operator: nothing remembered, a warm cache
    cache_event(cache, "ADDED", live)
    assert await applier.apply(cm()) is None
    assert transport.requests == []
    # From then on it behaves as if it had applied the object itself: a changed body is sent.
    assert await applier.apply(cm(value="2")) is not None
    assert len(transport.requests) == 1


async def test_a_new_process_reapplies_an_object_changed_by_someone_else() -> None:
    live = await applied_by_an_earlier_process()
    live["data"]["k"] = "edited by hand"  # drift while no operator ran: the annotation still matches
    applier, cache, transport = make()
    cache_event(cache, "ADDED", live)
    assert await applier.apply(cm()) is not None
    assert transport.requests[0].body["data"] == {"k": "1"}


async def test_a_new_process_reapplies_when_its_body_differs_even_by_a_removed_field() -> None:
    live = await applied_by_an_earlier_process()
    live["metadata"]["labels"] = {"old-version-label": "x"}  # an older operator also set this label
    earlier_hash = body_hash({**cm(), "metadata": {**cm()["metadata"], "labels": {"old-version-label": "x"}}})
    live["metadata"]["annotations"][APPLIED_HASH_ANNOTATION] = earlier_hash
    applier, cache, transport = make()  # the upgraded operator no longer sets it: apply drops it
    cache_event(cache, "ADDED", live)
    assert await applier.apply(cm()) is not None
    assert len(transport.requests) == 1


async def test_a_new_process_reapplies_a_workload_the_cache_holds_without_its_pod_spec() -> None:
    desired = {**cm(), "spec": {"template": {"spec": {"containers": [{"name": "mcp"}]}}}}
    earlier, _, sent = make()
    await earlier.apply(desired)
    live = {**sent.requests[0].body, "spec": {"template": {"spec": {}}}}  # what the cache keeps of it
    applier, cache, transport = make()
    cache_event(cache, "ADDED", live)
    assert await applier.apply(desired) is not None  # the pod spec cannot be checked: applied
    assert len(transport.requests) == 1
