"""Pure helpers: conditions with metav1 semantics, owner references, the store and its indexes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from controller.core.controller import owner_mapper
from controller.core.objects import carries, get_condition, owner_reference, set_condition
from controller.core.resources import DEPLOYMENT, ObjectKey, Resource
from controller.core.store import OWNER_INDEX, Store, strip_unread_fields

T1 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
T2 = datetime(2026, 1, 1, 13, 0, 0, tzinfo=UTC)
WIDGET = Resource("example.dev", "v1", "Widget", "widgets")


def test_transition_time_moves_only_when_status_flips() -> None:
    first = set_condition(None, "Ready", "False", "Starting", "pods pending", observed_generation=1, now=T1)
    same = set_condition(first, "Ready", "False", "StillStarting", "1/2 pods", observed_generation=2, now=T2)
    ready = get_condition(same, "Ready")
    assert ready is not None
    assert ready["lastTransitionTime"] == "2026-01-01T12:00:00Z", "no flip, no new transition time"
    assert (ready["reason"], ready["message"], ready["observedGeneration"]) == (
        "StillStarting",
        "1/2 pods",
        2,
    )
    flipped = get_condition(set_condition(same, "Ready", "True", "Serving", now=T2), "Ready")
    assert flipped is not None and flipped["lastTransitionTime"] == "2026-01-01T13:00:00Z"
    assert get_condition(first, "Ready") == {**get_condition(first, "Ready"), "reason": "Starting"}, (  # type: ignore[dict-item]
        "the input list is not modified"
    )


def test_conditions_keep_their_order_and_other_types() -> None:
    conditions = set_condition(None, "Accepted", "True", "Valid", now=T1)
    conditions = set_condition(conditions, "Ready", "Unknown", "Pending", now=T1)
    conditions = set_condition(conditions, "Accepted", "False", "Invalid", "spec.port: must be > 0", now=T2)
    assert [c["type"] for c in conditions] == ["Accepted", "Ready"]


@pytest.mark.parametrize(("status", "reason"), [("Yes", "Fine"), ("True", "not camel"), ("True", "")])
def test_invalid_condition_inputs_are_refused_with_the_field_named(status: str, reason: str) -> None:
    with pytest.raises(ValueError, match="condition Ready"):
        set_condition(None, "Ready", status, reason)


def test_owner_reference_needs_a_stored_owner_and_maps_back() -> None:
    owner = {"apiVersion": "example.dev/v1", "kind": "Widget", "metadata": {"name": "w", "uid": "u-1"}}
    ref = owner_reference(owner)
    assert ref == {
        "apiVersion": "example.dev/v1",
        "kind": "Widget",
        "name": "w",
        "uid": "u-1",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    with pytest.raises(ValueError, match=r"metadata\.uid"):
        owner_reference({"apiVersion": "example.dev/v1", "kind": "Widget", "metadata": {"name": "w"}})
    owned = {"metadata": {"name": "w-dep", "namespace": "ns", "ownerReferences": [ref]}}
    assert owner_mapper(WIDGET)(owned) == [ObjectKey("ns", "w")]
    assert owner_mapper(DEPLOYMENT)(owned) == [], "an owner of another kind is not this controller's"


def test_carries_tolerates_server_defaults_but_not_changed_values() -> None:
    desired = {"spec": {"ports": [{"port": 80}], "selector": {"app": "x"}}}
    actual = {
        "spec": {"ports": [{"port": 80, "protocol": "TCP"}], "selector": {"app": "x"}, "type": "ClusterIP"}
    }
    assert carries(actual, desired)
    assert not carries({"spec": {"ports": [{"port": 81}], "selector": {"app": "x"}}}, desired)
    assert not carries({"spec": {"ports": [], "selector": {"app": "x"}}}, desired)


def test_store_replace_reports_changes_and_keeps_indexes_in_step() -> None:
    store = Store({"size": lambda o: [str(o["spec"]["size"])]})

    def obj(name: str, rv: str, size: int, owner: str = "") -> dict[str, object]:
        meta: dict[str, object] = {"name": name, "namespace": "ns", "resourceVersion": rv}
        if owner:
            meta["ownerReferences"] = [{"uid": owner, "name": "o", "kind": "Widget"}]
        return {"metadata": meta, "spec": {"size": size}}

    store.replace([obj("a", "1", 1, owner="u1"), obj("b", "1", 2)])
    added, updated, deleted = store.replace([obj("a", "2", 3, owner="u1"), obj("c", "1", 3)])
    assert [o["metadata"]["name"] for o in added] == ["c"]  # type: ignore[index]
    assert [(old["spec"]["size"], new["spec"]["size"]) for old, new in updated] == [(1, 3)]  # type: ignore[index]
    assert [o["metadata"]["name"] for o in deleted] == ["b"]  # type: ignore[index]
    assert sorted(o["metadata"]["name"] for o in store.by_index("size", "3")) == ["a", "c"]  # type: ignore[index]
    assert store.by_index("size", "1") == []
    assert [o["metadata"]["name"] for o in store.by_index(OWNER_INDEX, "u1")] == ["a"]  # type: ignore[index]


def test_ingest_transform_strips_managed_fields_and_last_applied() -> None:
    obj = {
        "metadata": {
            "name": "a",
            "managedFields": [{"manager": "kubectl"}],
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}"},
        }
    }
    assert strip_unread_fields(obj) == {"metadata": {"name": "a"}}
