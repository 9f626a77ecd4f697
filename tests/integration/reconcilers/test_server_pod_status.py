"""A server pod that cannot run is named in the MCPServer's Ready condition and an Event (real API server).

No kubelet runs here: the test creates the pod the StatefulSet controller would and writes the status a
kubelet reports for each failure, as the other reconciler tests do for Deployments and StatefulSets.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.cluster import Cluster
from tests.support.kube import Api, condition
from tests.support.mcpserver import PLURAL, make_ready, ready, server
from tests.support.operator import Operator
from tests.support.waiting import eventually

IMAGE = "registry.example/missing:1"


async def server_pod(kube: Api, name: str, statefulset: str | None = None) -> str:
    """Create pod 0 of the server StatefulSet (``<name>-server``, or ``statefulset``) owned by it, with the
    labels of its template."""
    sts = await kube.wait_child("StatefulSet", statefulset or f"{name}-server")
    pod_name = f"{sts['metadata']['name']}-0"
    await kube.core.create_namespaced_pod(
        kube.ns,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": pod_name,
                "labels": sts["spec"]["template"]["metadata"]["labels"],
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "StatefulSet",
                        "name": sts["metadata"]["name"],
                        "uid": sts["metadata"]["uid"],
                        "controller": True,
                    }
                ],
            },
            "spec": {"containers": [{"name": "mcp", "image": IMAGE}]},
        },
    )
    return pod_name


async def kubelet_reports(
    kube: Api,
    pod: str,
    state: dict[str, Any],
    last: dict[str, Any] | None = None,
    restarts: int = 0,
    container: str = "mcp",
) -> None:
    status = {
        "phase": "Pending",
        "containerStatuses": [
            {
                "name": container,
                "image": IMAGE,
                "imageID": "",
                "ready": False,
                "restartCount": restarts,
                "state": state,
                "lastState": last or {},
            }
        ],
    }
    await kube.core.patch_namespaced_pod_status(
        pod, kube.ns, {"status": status}, _content_type="application/merge-patch+json"
    )


async def ready_condition(kube: Api, name: str, reason: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        cond = condition(await kube.get(PLURAL, name), "Ready")
        return cond if cond and cond["status"] == "False" and cond["reason"] == reason else None

    found: dict[str, Any] = await eventually(check, what=f"Ready=False reason {reason}")
    return found


async def warning_events(kube: Api, name: str) -> list[Any]:
    events = await kube.core.list_namespaced_event(kube.ns)
    return [
        e
        for e in events.items
        if e.involved_object.name == name and e.involved_object.kind == "MCPServer" and e.type == "Warning"
    ]


CONFIG_ERROR = {
    "waiting": {
        "reason": "CreateContainerConfigError",
        "message": "container has runAsNonRoot and image will run as root",
    }
}


def crash_loop(delay: str) -> dict[str, Any]:
    return {
        "waiting": {"reason": "CrashLoopBackOff", "message": f"back-off {delay} restarting failed container"}
    }


@pytest.mark.parametrize(
    ("state", "retried", "last", "reason", "words"),
    [
        (
            {"waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{IMAGE}"'}},
            {"waiting": {"reason": "ErrImagePull", "message": "rpc error: code = NotFound"}},
            None,
            "ImagePullFailed",
            [IMAGE, "cannot be pulled", "spec.image"],
        ),
        (CONFIG_ERROR, CONFIG_ERROR, None, "ContainerConfigError", ["runAsNonRoot", "container mcp"]),
        (
            crash_loop("10s"),
            crash_loop("20s"),
            {"terminated": {"exitCode": 3, "reason": "Error"}},
            "CrashLoopBackOff",
            ["keeps exiting", "exit code 3"],
        ),
    ],
    ids=["image", "security-context", "crashloop"],
)
async def test_a_failing_server_pod_is_named_in_ready_and_an_event(
    operator: Operator,
    kube: Api,
    mcp_crds: Cluster,
    state: dict[str, Any],
    retried: dict[str, Any],
    last: dict[str, Any] | None,
    reason: str,
    words: list[str],
) -> None:
    name = "broken"
    await kube.create(PLURAL, server(name, image=IMAGE))
    await make_ready(kube, name)
    await kube.mark_ready("StatefulSet", f"{name}-server", ready=0)
    pod = await server_pod(kube, name)
    await kubelet_reports(kube, pod, state, last)

    cond = await ready_condition(kube, name, reason)
    assert f"server pod {kube.ns}/{pod}" in cond["message"], cond
    for word in words:
        assert word in cond["message"], (word, cond)
    obj = await kube.get(PLURAL, name)
    assert obj["status"]["phase"] == "Failed"
    assert "Deployment" not in obj["status"]["message"]  # the proxy is not blamed for its server
    events = await eventually(lambda: warning_events(kube, name), what="a Warning Event")
    assert any(e.reason == reason and pod in e.message for e in events), events

    # The kubelet retries (its back-off message changes): the status says the same, nothing is written.
    writes = await operator.settled()
    reconciles = operator.reconciles()
    await kubelet_reports(kube, pod, retried, last, restarts=1)

    async def reconciled_again() -> bool:
        return operator.reconciles() > reconciles

    await eventually(reconciled_again, what="a reconcile after the retry")
    assert await operator.settled() == writes

    # The pod recovers (the user fixed the spec): Ready comes back, with no one deleting anything.
    await kubelet_reports(kube, pod, {"running": {"startedAt": "2026-01-01T00:00:00Z"}})
    await kube.mark_ready("StatefulSet", f"{name}-server", ready=1)
    await ready(kube, name)
