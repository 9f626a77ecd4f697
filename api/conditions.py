"""The status condition shared by every kind: the shape of Kubernetes ``metav1.Condition``.

Conditions are stored as a list-map keyed by ``type`` (``x-kubernetes-list-type: map``), so server-side
apply merges them per type. The vocabulary below is common to all kinds; kinds add their own types.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from api.base import CRDModel

__all__ = [
    "ACCEPTED",
    "READY",
    "RESOLVED_REFS",
    "Condition",
    "ConditionStatus",
    "Conditions",
    "find_condition",
]

#: The spec is valid (``validate`` found no problem). False with reason ``Invalid`` lists the problems.
ACCEPTED = "Accepted"
#: Every object the spec refers to exists and is usable.
RESOLVED_REFS = "ResolvedRefs"
#: The resource is serving.
READY = "Ready"

ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(CRDModel):
    """One aspect of the resource's current state (the ``metav1.Condition`` shape)."""

    type: str = Field(
        min_length=1,
        max_length=316,
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
        r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
    )
    """Type of the condition in CamelCase, e.g. ``Ready``."""
    status: ConditionStatus
    """Status of the condition: ``True``, ``False`` or ``Unknown``."""
    observed_generation: int | None = Field(default=None, ge=0, json_schema_extra={"format": "int64"})
    """The ``metadata.generation`` the condition was computed from."""
    last_transition_time: str = Field(json_schema_extra={"format": "date-time"})
    """RFC 3339 time the status last changed (not when the message or reason changed)."""
    reason: str = Field(min_length=1, max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    """Programmatic identifier of the condition's last transition, in CamelCase."""
    message: str = Field(default="", max_length=32768)
    """Human-readable details of the transition."""


#: A list of conditions as stored in ``status.conditions``: a list-map keyed by ``type``.
#: Declare it as ``conditions: Conditions = Field(default_factory=list)``.
Conditions = Annotated[
    list[Condition],
    Field(json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}),
]


def find_condition(conditions: list[Condition], type_: str) -> Condition | None:
    """The condition of type ``type_``, or ``None``."""
    return next((c for c in conditions if c.type == type_), None)
