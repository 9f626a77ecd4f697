"""Pure helpers over raw objects: conditions (metav1 semantics), owner references, finalizers.

No I/O and no clock of their own: callers pass ``now`` so the functions stay deterministic in tests.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

Object = dict[str, Any]

CONDITION_STATUSES = ("True", "False", "Unknown")


def rfc3339(moment: datetime | None = None) -> str:
    """``2006-01-02T15:04:05Z`` (seconds precision, UTC), as metav1.Time serialises."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def get_condition(conditions: list[Object] | None, type_: str) -> Object | None:
    """The condition of ``type_`` in a conditions list, or None."""
    for condition in conditions or []:
        if condition.get("type") == type_:
            return condition
    return None


def set_condition(
    conditions: list[Object] | None,
    type_: str,
    status: str,
    reason: str,
    message: str = "",
    *,
    observed_generation: int | None = None,
    now: datetime | None = None,
) -> list[Object]:
    """Return a new conditions list with ``type_`` set, as apimachinery's ``SetStatusCondition``.

    ``lastTransitionTime`` moves only when ``status`` changes (or the condition is new); reason,
    message and observedGeneration are always overwritten. The input list is not modified.
    """
    if status not in CONDITION_STATUSES:
        raise ValueError(f"condition {type_}: status must be one of {CONDITION_STATUSES}, got '{status}'")
    if not reason or not reason[0].isupper() or not reason.replace("_", "").isalnum():
        raise ValueError(f"condition {type_}: reason must be a CamelCase identifier, got '{reason}'")
    # A copy of each condition (set_condition only assigns their top-level fields, all scalars).
    result = [dict(c) for c in conditions or []]
    existing = get_condition(result, type_)
    if existing is None:
        existing = {"type": type_}
        result.append(existing)
    if existing.get("status") != status or "lastTransitionTime" not in existing:
        existing["lastTransitionTime"] = rfc3339(now)
    existing["status"] = status
    existing["reason"] = reason
    existing["message"] = message
    if observed_generation is not None:
        existing["observedGeneration"] = observed_generation
    else:
        existing.pop("observedGeneration", None)
    return result


def is_condition_true(conditions: list[Object] | None, type_: str) -> bool:
    condition = get_condition(conditions, type_)
    return condition is not None and condition.get("status") == "True"


def owner_reference(owner: Object, *, controller: bool = True, block_owner_deletion: bool = True) -> Object:
    """An ownerReferences entry pointing at ``owner`` (which must carry its uid, i.e. come from the API)."""
    meta = owner.get("metadata") or {}
    missing = [f for f in ("apiVersion", "kind") if not owner.get(f)] + [
        f"metadata.{f}" for f in ("name", "uid") if not meta.get(f)
    ]
    if missing:
        raise ValueError(
            f"owner_reference needs an object read from the API server; missing {', '.join(missing)}"
        )
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": controller,
        "blockOwnerDeletion": block_owner_deletion,
    }


def controller_of(obj: Object) -> Object | None:
    """The ownerReference with ``controller: true``, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


def has_finalizer(obj: Object, finalizer: str) -> bool:
    return finalizer in ((obj.get("metadata") or {}).get("finalizers") or [])


def is_being_deleted(obj: Object) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def carries(actual: Any, desired: Any) -> bool:
    """True when every field of ``desired`` is present with the same value in ``actual``.

    Dicts compare as subsets (the server adds defaults); lists must have the same length and compare
    element by element. Used to tell whether an object still holds what we last applied.
    """
    if isinstance(desired, dict):
        return isinstance(actual, dict) and all(
            key in actual and carries(actual[key], value) for key, value in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(desired)
            and all(carries(a, d) for a, d in zip(actual, desired, strict=True))
        )
    return bool(actual == desired)
