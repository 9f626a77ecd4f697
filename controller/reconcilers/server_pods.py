"""Why an MCPServer's server pod does not run: read from the pods the StatefulSet made, as the kubelet
reports them, so that the MCPServer's Ready condition names the pod, the container and the cause (an
image that cannot be pulled, a security context the image cannot run under, a process that keeps
exiting) instead of blaming the proxy that waits for it.

Only the server pods are cached (a label selector on the watch), stripped to the status fields read here.
Messages are kept stable across the kubelet's retries (``ErrImagePull`` and ``ImagePullBackOff``
alternate, back-off delays grow), so a failing pod costs one status write and one Event, not one per retry.
A crash-looping container passes through three states on each restart (waiting in ``CrashLoopBackOff``,
running for a moment, terminated with an error): the terminated one reads as the same crash loop, and so
does the moment it runs again while the MCPServer still reports that crash loop (``previous_reason``), so
that each restart does not rewrite the status twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controller.core import OWNER_INDEX, POD, STATEFULSET, Cache, ObjectKey, Watch, controller_of
from controller.reconcilers.children import MANAGED_BY

JSON = dict[str, Any]

SERVER_POD_SELECTOR = f"app.kubernetes.io/managed-by={MANAGED_BY},app.kubernetes.io/component=server"

IMAGE_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName"})
# Reasons whose kubelet message does not change between retries, so it can be quoted.
STABLE_IMAGE_MESSAGE = frozenset({"ErrImageNeverPull", "InvalidImageName"})
CONFIG_REASONS = frozenset({"CreateContainerConfigError", "CreateContainerError", "RunContainerError"})
STARTING = frozenset({"ContainerCreating", "PodInitializing"})


@dataclass(frozen=True)
class PodProblem:
    """Why a server pod does not run: a condition reason and a message naming the pod and the cause."""

    reason: str
    message: str


def strip_pod(obj: JSON) -> JSON:
    """What the status reads of a pod: identity, owners, phase, scheduling and container states."""
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    containers = [
        {
            "name": c.get("name"),
            "image": c.get("image"),
            "state": c.get("state") or {},
            "lastState": {"terminated": (c.get("lastState") or {}).get("terminated")},
        }
        for c in status.get("containerStatuses") or []
    ]
    scheduled = [c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"]
    return {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "metadata": {
            key: meta[key]
            for key in (
                "name",
                "namespace",
                "uid",
                "resourceVersion",
                "labels",
                "ownerReferences",
                "deletionTimestamp",
            )
            if key in meta
        },
        "status": {"phase": status.get("phase"), "conditions": scheduled, "containerStatuses": containers},
    }


def setup(cache: Cache, owner_kind: str) -> Watch:
    """Cache the server pods; a change to one enqueues the workload owning its StatefulSet."""
    cache.set_label_selector(POD, SERVER_POD_SELECTOR)
    cache.set_transform(POD, strip_pod)

    def owner_of(pod: JSON) -> list[ObjectKey]:
        namespace = (pod.get("metadata") or {}).get("namespace") or ""
        sts_ref = controller_of(pod)
        if sts_ref is None or sts_ref.get("kind") != "StatefulSet":
            return []
        sts = cache.get(STATEFULSET, namespace, str(sts_ref.get("name") or ""))
        owner = controller_of(sts) if sts is not None else None
        if owner is None or owner.get("kind") != owner_kind:
            return []
        return [ObjectKey(namespace, str(owner.get("name") or ""))]

    return Watch(POD, owner_of)


def problem(cache: Cache, statefulset: JSON | None, previous_reason: str | None = None) -> PodProblem | None:
    """The first reason a pod of ``statefulset`` cannot run, or None (running, or still starting).

    ``previous_reason`` is the reason the owner's Ready condition gives now (see the module's text)."""
    if statefulset is None:
        return None
    uid = str((statefulset.get("metadata") or {}).get("uid") or "")
    pods = sorted(cache.by_index(POD, OWNER_INDEX, uid), key=lambda p: str(p["metadata"].get("name")))
    for pod in pods:
        found = pod_problem(pod, previous_reason)
        if found is not None:
            return found
    return None


def pod_problem(pod: JSON, previous_reason: str | None = None) -> PodProblem | None:
    """Why this one pod cannot run, from its scheduling condition and its containers' states."""
    meta = pod.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return None  # going away (a rollout, a deletion): its containers' exits are no fault
    where = f"server pod {meta.get('namespace')}/{meta.get('name')}"
    status = pod.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("status") == "False" and condition.get("reason") == "Unschedulable":
            return PodProblem("Unschedulable", f"{where} cannot be scheduled: {condition.get('message')}")
    for container in status.get("containerStatuses") or []:
        found = _container_problem(where, container, previous_reason == CRASH_LOOP)
        if found is not None:
            return found
    return None


CRASH_LOOP = "CrashLoopBackOff"


def _crash_loop(where: str, name: object, exited: JSON) -> PodProblem:
    exit_code = exited.get("exitCode")
    detail = (
        f": last exit code {exit_code} ({exited.get('reason') or 'Error'})" if exit_code is not None else ""
    )
    return PodProblem(CRASH_LOOP, f"{where}: container {name} keeps exiting after it starts{detail}")


def _exited(state: JSON | None) -> JSON | None:
    """The termination in a container state (a server process is meant to run until its pod goes)."""
    return (state or {}).get("terminated") or None


def _container_problem(where: str, container: JSON, crash_looping: bool) -> PodProblem | None:
    name = container.get("name")
    state = container.get("state") or {}
    exited = _exited(state)
    if exited is not None:  # between two restarts
        return _crash_loop(where, name, exited)
    last_exit = _exited(container.get("lastState"))
    if "running" in state and crash_looping and last_exit is not None:  # running again, for a moment
        return _crash_loop(where, name, last_exit)
    waiting = state.get("waiting") or {}
    reason = str(waiting.get("reason") or "")
    message = str(waiting.get("message") or "").strip()
    if not reason or reason in STARTING:
        return None
    if reason in IMAGE_REASONS:
        cause = f" ({reason}: {message})" if reason in STABLE_IMAGE_MESSAGE and message else ""
        return PodProblem(
            "ImagePullFailed",
            f'{where}: image "{container.get("image")}" of container {name} cannot be pulled{cause}; '
            "check spec.image (and the image pull secrets of spec.podTemplateSpec)",
        )
    if reason in CONFIG_REASONS:
        return PodProblem(
            "ContainerConfigError", f"{where}: container {name} cannot start ({reason}): {message}"
        )
    if reason == CRASH_LOOP:
        return _crash_loop(where, name, last_exit or {})
    return PodProblem("ServerPodNotRunning", f"{where}: container {name} is waiting ({reason}): {message}")
