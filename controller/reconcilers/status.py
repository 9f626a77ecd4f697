"""Status of workload kinds: readiness read from the cached children, conditions, phase and Events.

Pure functions over raw dicts: what the children's own controllers report (Deployment and StatefulSet
status) becomes ``Ready``; the previous and next conditions decide which Events to emit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from api.conditions import ACCEPTED, READY, RESOLVED_REFS
from api.problems import Problem, format_problems
from controller.core import NORMAL, WARNING, get_condition, set_condition

JSON = dict[str, Any]

PENDING, RUNNING, FAILED, STOPPED, TERMINATING = "Pending", "Running", "Failed", "Stopped", "Terminating"


@dataclass(frozen=True)
class WorkloadState:
    """How far a Deployment or StatefulSet has come, as its controller reports it."""

    exists: bool
    ready: bool
    ready_replicas: int
    detail: str
    failure: str | None = None
    """A reason its pods cannot run (e.g. ``ImagePullFailed``); ``detail`` then names the pod and cause."""


def newest(cached: JSON | None, applied: JSON | None) -> JSON | None:
    """The later of a cached object and the answer to our apply of it (by resourceVersion)."""
    if cached is None or applied is None:
        return applied if cached is None else cached
    rv_cached = str((cached.get("metadata") or {}).get("resourceVersion", ""))
    rv_applied = str((applied.get("metadata") or {}).get("resourceVersion", ""))
    if rv_cached.isdigit() and rv_applied.isdigit() and int(rv_applied) > int(rv_cached):
        return applied
    return cached


def workload_state(obj: JSON | None, kind: str) -> WorkloadState:
    """Ready when the controller has observed the current generation and at least one pod is ready."""
    if obj is None:
        return WorkloadState(False, False, 0, f"{kind} not created yet")
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    ready_replicas = int(status.get("readyReplicas") or 0)
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        return WorkloadState(True, False, ready_replicas, f"{kind} {meta.get('name')} is rolling out")
    counted = int(status.get("availableReplicas") or 0) if kind == "Deployment" else ready_replicas
    if counted < 1:
        return WorkloadState(True, False, ready_replicas, f"{kind} {meta.get('name')} has no ready pod yet")
    return WorkloadState(True, True, ready_replicas, f"{kind} {meta.get('name')} is ready")


@dataclass
class StatusBuilder:
    """Accumulates conditions (metav1 semantics against the previous list) and the events they imply."""

    previous: list[JSON]
    generation: int
    now: datetime | None = None
    conditions: list[JSON] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.conditions = [dict(c) for c in self.previous]

    @classmethod
    def of(cls, raw: JSON) -> StatusBuilder:
        """A builder over the conditions ``raw`` (a cached object) carries, at its current generation."""
        generation = int((raw.get("metadata") or {}).get("generation") or 0)
        return cls(list((raw.get("status") or {}).get("conditions") or []), generation)

    def set(self, type_: str, ok: bool, reason: str, message: str, *, event: bool = True) -> None:
        before = get_condition(self.previous, type_)
        status = "True" if ok else "False"
        self.conditions = set_condition(
            self.conditions, type_, status, reason, message, observed_generation=self.generation, now=self.now
        )
        changed = before is None or before.get("status") != status or before.get("reason") != reason
        # A condition that starts out True (a valid spec, its references found) is the expected case:
        # no Event for it, only for transitions worth a user's attention.
        if event and changed and not (ok and type_ in (ACCEPTED, RESOLVED_REFS) and before is None):
            self.events.append((NORMAL if ok else WARNING, reason, message))

    def remove(self, type_: str) -> None:
        self.conditions = [c for c in self.conditions if c.get("type") != type_]


ACCEPTED_WITH_WARNINGS = "AcceptedWithWarnings"
"""The ``Accepted=True`` reason of a valid spec with notices (``api.notices``)."""


def accept(builder: StatusBuilder, notices: list[Problem], message: str, *, event: bool = True) -> None:
    """``Accepted=True``; with notices (valid, as in ToolHive, but doing nothing) the reason is
    ``AcceptedWithWarnings``, the message names each, and a Warning Event says so whenever they change."""
    if not notices:
        builder.set(ACCEPTED, True, "Accepted", message, event=event)
        return
    text = f"{message}, with warnings: {format_problems(notices)}"
    before = get_condition(builder.previous, ACCEPTED)
    builder.set(ACCEPTED, True, ACCEPTED_WITH_WARNINGS, text, event=False)
    if before is None or before.get("message") != text:
        builder.events.append((WARNING, ACCEPTED_WITH_WARNINGS, text))


def invalid_status(
    previous: JSON, generation: int, message: str, now: datetime | None = None
) -> tuple[JSON, list[tuple[str, str, str]]]:
    """Status (and Events) for a spec that cannot be accepted: nothing else is evaluated."""
    builder = StatusBuilder(list(previous.get("conditions") or []), generation, now)
    builder.set(ACCEPTED, False, "InvalidSpec", message)
    builder.set(READY, False, "InvalidSpec", "the spec is invalid; see the Accepted condition", event=False)
    builder.remove(RESOLVED_REFS)
    status = {
        "phase": FAILED,
        "message": message,
        "observedGeneration": generation,
        "conditions": builder.conditions,
    }
    return status, builder.events
