"""Server pods that cannot start, on a real node: the MCPServer's Ready=False names the failing server pod
and the cause (with a Warning Event), a fixed spec replaces the broken pod by itself, and images running
as root, as a numeric user or as a named user all start under the operator's defaults."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from tests.support.cluster import Cluster
from tests.support.e2e import (
    BASE_IMAGE,
    NAMED_USER_IMAGE,
    TIME_SERVER_IMAGE,
    WHOAMI_SERVER,
    apply_server,
    call_tool,
    eventually,
    kubectl_json,
    ready_condition,
    retry,
    server_pods,
    service_base,
    wait_ready,
)

pytestmark = pytest.mark.e2e

MISSING_IMAGE = "localhost/mcp-operator/does-not-exist:dev"


def server_container_state(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    pods = server_pods(cluster, namespace, name)
    statuses = pods[0]["status"].get("containerStatuses", []) if pods else []
    return dict(statuses[0]["state"]) if statuses else {}


def not_ready_because(cluster: Cluster, namespace: str, name: str, reason: str) -> dict[str, Any]:
    """The MCPServer's Ready condition once it is False with ``reason``."""

    def reported() -> dict[str, Any] | None:
        ready = ready_condition(cluster, "mcpserver", namespace, name)
        return ready if ready and ready["status"] == "False" and ready["reason"] == reason else None

    return eventually(reported, 120, f"MCPServer {name} Ready=False with reason {reason}")


def warning_events(cluster: Cluster, namespace: str, name: str) -> list[dict[str, Any]]:
    events = kubectl_json(
        cluster, "get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={name}"
    )["items"]
    return [e for e in events if e["type"] == "Warning" and e["involvedObject"]["kind"] == "MCPServer"]


def test_server_image_that_cannot_be_pulled_is_named_in_the_ready_reason_and_an_event(
    node_cluster: Cluster, workload_namespace: str
) -> None:
    apply_server(node_cluster, workload_namespace, "missing", {"image": MISSING_IMAGE, "transport": "stdio"})
    ready = not_ready_because(node_cluster, workload_namespace, "missing", "ImagePullFailed")
    (pod,) = server_pods(node_cluster, workload_namespace, "missing")
    pod_name = f"{workload_namespace}/{pod['metadata']['name']}"
    assert MISSING_IMAGE in ready["message"], ready
    assert pod_name in ready["message"], ready
    server = kubectl_json(node_cluster, "get", "mcpserver", "-n", workload_namespace, "missing")
    assert server["status"]["phase"] == "Failed", server["status"]

    def warned() -> list[dict[str, Any]] | None:
        found = [
            e for e in warning_events(node_cluster, workload_namespace, "missing") if pod_name in e["message"]
        ]
        return found or None

    (event,) = eventually(warned, 30, "a Warning Event on the MCPServer naming the server pod")
    assert event["reason"] == "ImagePullFailed", event
    assert MISSING_IMAGE in event["message"], event


def test_fixing_the_image_recovers_without_deleting_a_pod(
    node_cluster: Cluster, workload_namespace: str
) -> None:
    apply_server(node_cluster, workload_namespace, "fixed", {"image": MISSING_IMAGE, "transport": "stdio"})
    not_ready_because(node_cluster, workload_namespace, "fixed", "ImagePullFailed")
    apply_server(
        node_cluster, workload_namespace, "fixed", {"image": TIME_SERVER_IMAGE, "transport": "stdio"}
    )
    wait_ready(node_cluster, workload_namespace, "fixed")  # no pod deleted by hand: the StatefulSet did it
    (pod,) = server_pods(node_cluster, workload_namespace, "fixed")
    assert pod["spec"]["containers"][0]["image"] == TIME_SERVER_IMAGE
    assert "running" in pod["status"]["containerStatuses"][0]["state"]


@pytest.mark.parametrize(
    "image",
    [
        pytest.param(BASE_IMAGE, id="root"),  # no USER: root
        pytest.param(NAMED_USER_IMAGE, id="named-user"),  # USER mcp: a name the kubelet cannot check
    ],
)
async def test_server_image_running_as_root_or_a_named_user_starts_as_the_default_user(
    node_cluster: Cluster, workload_namespace: str, image: str
) -> None:
    # The base image has no entrypoint (the args are the command); the named-user one runs bash.
    command = ["python3", "-c", WHOAMI_SERVER]
    args = command if image == BASE_IMAGE else ["-c", 'exec python3 -c "$0"', WHOAMI_SERVER]
    spec = {"image": image, "transport": "stdio", "args": args}
    apply_server(node_cluster, workload_namespace, "user", spec)
    wait_ready(node_cluster, workload_namespace, "user")
    (pod,) = server_pods(node_cluster, workload_namespace, "user")
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 0
    url = f"{service_base(node_cluster, workload_namespace, 'user')}/mcp"
    with anyio.fail_after(60):
        text = await retry(lambda: call_tool(url, "whoami", {}))
    assert text == "uid=1000 gid=1000 home=/tmp", text


def test_server_image_running_as_its_numeric_user_is_ready(
    node_cluster: Cluster, workload_namespace: str
) -> None:
    apply_server(
        node_cluster, workload_namespace, "numeric", {"image": TIME_SERVER_IMAGE, "transport": "stdio"}
    )
    wait_ready(node_cluster, workload_namespace, "numeric")
    (pod,) = server_pods(node_cluster, workload_namespace, "numeric")
    (status,) = pod["status"]["containerStatuses"]
    assert "running" in status["state"], status
    assert status["restartCount"] == 0, status


def test_server_that_exits_at_once_is_reported_as_crash_looping_without_a_hot_loop(
    node_cluster: Cluster, workload_namespace: str
) -> None:
    # mcp-server-time refuses an unknown option and exits 2 each time the kubelet restarts it.
    spec = {"image": TIME_SERVER_IMAGE, "transport": "stdio", "args": ["--no-such-option"]}
    apply_server(node_cluster, workload_namespace, "crash", spec)
    ready = not_ready_because(node_cluster, workload_namespace, "crash", "CrashLoopBackOff")
    (pod,) = server_pods(node_cluster, workload_namespace, "crash")
    assert f"{workload_namespace}/{pod['metadata']['name']}" in ready["message"], ready
    assert "exit code 2" in ready["message"], ready

    # Each restart changes the pod; the MCPServer's status, already saying why, must not be rewritten.
    server = kubectl_json(node_cluster, "get", "mcpserver", "-n", workload_namespace, "crash")
    restarts = pod["status"]["containerStatuses"][0]["restartCount"]

    def restarted_again() -> int | None:
        (now,) = server_pods(node_cluster, workload_namespace, "crash")
        count = int(now["status"]["containerStatuses"][0]["restartCount"])
        return count if count > restarts else None

    eventually(restarted_again, 120, "the kubelet restarting the crashing server once more", 1)
    after = kubectl_json(node_cluster, "get", "mcpserver", "-n", workload_namespace, "crash")
    assert after["metadata"]["resourceVersion"] == server["metadata"]["resourceVersion"], (
        server["status"],
        after["status"],
    )
