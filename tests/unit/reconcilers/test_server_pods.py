"""Why a server pod does not run, as the MCPServer's Ready condition says it (pure)."""

from __future__ import annotations

from typing import Any

from controller.reconcilers.server_pods import pod_problem, strip_pod


def pod(containers: list[dict[str, Any]], conditions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "s-server-0", "namespace": "ns", "uid": "u", "managedFields": [{}]},
        "spec": {"containers": [{"name": "mcp", "image": "x"}]},
        "status": {"phase": "Pending", "conditions": conditions or [], "containerStatuses": containers},
    }


def waiting(reason: str, message: str = "") -> dict[str, Any]:
    return {"name": "mcp", "image": "img:1", "state": {"waiting": {"reason": reason, "message": message}}}


def test_starting_and_running_pods_have_no_problem() -> None:
    assert pod_problem(pod([waiting("ContainerCreating")])) is None
    assert pod_problem(pod([{"name": "mcp", "state": {"running": {}}}])) is None
    assert pod_problem(pod([])) is None


def test_image_reasons_are_one_stable_reason_whatever_the_kubelet_retry_says() -> None:
    back_off = pod_problem(pod([waiting("ImagePullBackOff", 'Back-off pulling image "img:1"')]))
    err = pod_problem(pod([waiting("ErrImagePull", "rpc error: 1234")]))
    assert back_off is not None and back_off == err
    assert back_off.reason == "ImagePullFailed" and '"img:1"' in back_off.message
    never = pod_problem(pod([waiting("ErrImageNeverPull", "not present with pull policy of Never")]))
    assert never is not None and "pull policy of Never" in never.message


def test_unschedulable_pod_says_why() -> None:
    found = pod_problem(
        pod(
            [],
            [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1 nodes"}],
        )
    )
    assert found is not None and found.reason == "Unschedulable" and "0/1 nodes" in found.message


def test_strip_keeps_only_what_the_status_reads() -> None:
    stripped = strip_pod(pod([waiting("CrashLoopBackOff")]))
    assert "spec" not in stripped and "managedFields" not in stripped["metadata"]
    assert stripped["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "CrashLoopBackOff"
