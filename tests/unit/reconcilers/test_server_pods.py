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


def crash_cycle() -> list[dict[str, Any]]:
    """A crash-looping container on each step of one restart: backing off, running a moment, exited."""
    exit_2 = {"terminated": {"exitCode": 2, "reason": "Error", "finishedAt": "t1"}}
    exit_2_again = {"terminated": {"exitCode": 2, "reason": "Error", "finishedAt": "t2"}}
    return [
        {**waiting("CrashLoopBackOff", "back-off 20s"), "lastState": exit_2},
        {"name": "mcp", "state": {"running": {"startedAt": "t2"}}, "lastState": exit_2},
        {"name": "mcp", "state": exit_2_again, "lastState": exit_2},
    ]


def test_every_step_of_a_crash_loop_reads_as_the_same_problem() -> None:
    found = {pod_problem(pod([step]), previous_reason="CrashLoopBackOff") for step in crash_cycle()}
    (one,) = found  # one message for the whole cycle: one status write, not one per restart
    assert one is not None and one.reason == "CrashLoopBackOff"
    assert "ns/s-server-0" in one.message and "last exit code 2 (Error)" in one.message


def test_a_container_running_after_a_crash_is_a_problem_only_while_reported_as_crash_looping() -> None:
    running_again = crash_cycle()[1]
    assert pod_problem(pod([running_again])) is None
    assert pod_problem(pod([running_again]), previous_reason="ImagePullFailed") is None


def test_a_pod_going_away_has_no_problem() -> None:
    going = pod([crash_cycle()[2]])
    going["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert pod_problem(going) is None
    assert strip_pod(going)["metadata"]["deletionTimestamp"] == "2026-01-01T00:00:00Z"
