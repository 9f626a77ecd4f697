"""Server pods that cannot start, on a real node: what the MCPServer's status says, and recovery.

Each test marked ``xfail(strict=True)`` shows a known product bug on real pods (its reason says what
happens today); it turns into a failure ("XPASS strict") as soon as the bug is fixed, so the marker must
then be removed. Only a failed assertion counts as the expected failure; any other error stays an error.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Cluster
from tests.e2e.conftest import BASE_IMAGE, TIME_SERVER_IMAGE, eventually, kubectl_json
from tests.e2e.test_mcpserver_pods import SERVER_LABELS, apply_server, wait_ready

pytestmark = pytest.mark.e2e

MISSING_IMAGE = "localhost/mcp-operator/does-not-exist:dev"


def ready_condition(cluster: Cluster, namespace: str, name: str) -> dict[str, Any] | None:
    server = kubectl_json(cluster, "get", "mcpserver", "-n", namespace, name)
    conditions = server.get("status", {}).get("conditions", [])
    return next((c for c in conditions if c["type"] == "Ready"), None)


def server_container_state(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    selector = f"{SERVER_LABELS},app.kubernetes.io/instance={name}"
    pods = kubectl_json(cluster, "get", "pods", "-n", namespace, "-l", selector)["items"]
    statuses = pods[0]["status"].get("containerStatuses", []) if pods else []
    return dict(statuses[0]["state"]) if statuses else {}


@pytest.mark.xfail(
    strict=True,
    raises=(AssertionError, pytest.fail.Exception),  # a set-up error stays an error
    reason="product bug: Ready=False says 'Deployment <name> has no ready pod yet' (the proxy) while the "
    "server pod is in ImagePullBackOff; the reason should name the server pod and the image",
)
def test_server_image_that_cannot_be_pulled_is_named_in_the_ready_reason(
    node_cluster: Cluster, workload_namespace: str
) -> None:
    apply_server(node_cluster, workload_namespace, "missing", {"image": MISSING_IMAGE, "transport": "stdio"})
    eventually(
        lambda: "waiting" in server_container_state(node_cluster, workload_namespace, "missing"),
        60,
        "the server pod waiting for its image",
    )

    def names_the_image() -> dict[str, Any] | None:
        ready = ready_condition(node_cluster, workload_namespace, "missing")
        return ready if ready and ready["status"] == "False" and MISSING_IMAGE in ready["message"] else None

    eventually(names_the_image, 30, "Ready=False naming the image that cannot be pulled")


@pytest.mark.xfail(
    strict=True,
    raises=(AssertionError, pytest.fail.Exception),  # a set-up error stays an error
    reason="product bug: the server StatefulSet (OrderedReady) keeps the broken pod after the image is "
    "fixed (updateRevision never rolls out), so the MCPServer stays Pending until the pod is deleted",
)
def test_fixing_the_image_recovers_without_deleting_a_pod(
    node_cluster: Cluster, workload_namespace: str
) -> None:
    apply_server(node_cluster, workload_namespace, "fixed", {"image": MISSING_IMAGE, "transport": "stdio"})
    eventually(
        lambda: "waiting" in server_container_state(node_cluster, workload_namespace, "fixed"),
        60,
        "the server pod waiting for its image",
    )
    apply_server(
        node_cluster, workload_namespace, "fixed", {"image": TIME_SERVER_IMAGE, "transport": "stdio"}
    )
    result = node_cluster.kubectl(
        "wait",
        "-n",
        workload_namespace,
        "mcpserver/fixed",
        "--for=condition=Ready",
        "--timeout=90s",
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.xfail(
    strict=True,
    raises=(AssertionError, pytest.fail.Exception),  # a set-up error stays an error
    reason="product bug: the operator forces runAsNonRoot without a user, so an image that runs as root "
    "never starts (CreateContainerConfigError: container has runAsNonRoot and image will run as root)",
)
def test_image_running_as_root_starts(node_cluster: Cluster, workload_namespace: str) -> None:
    # The Debian base image runs bash as root; as a stdio "server" it just waits on stdin.
    apply_server(node_cluster, workload_namespace, "root", {"image": BASE_IMAGE, "transport": "stdio"})

    def started_or_refused() -> dict[str, Any] | None:
        state = server_container_state(node_cluster, workload_namespace, "root")
        waiting = state.get("waiting", {}).get("reason")
        return state if "running" in state or waiting == "CreateContainerConfigError" else None

    state = eventually(started_or_refused, 60, "the root image's server container started or refused")
    assert "running" in state, state


def test_server_pod_running_as_the_images_numeric_user_is_ready(
    node_cluster: Cluster, workload_namespace: str
) -> None:
    """The counterpart that works today: a numeric non-root USER starts under the operator's defaults."""
    apply_server(
        node_cluster, workload_namespace, "numeric", {"image": TIME_SERVER_IMAGE, "transport": "stdio"}
    )
    wait_ready(node_cluster, workload_namespace, "numeric")
    assert "running" in server_container_state(node_cluster, workload_namespace, "numeric")
