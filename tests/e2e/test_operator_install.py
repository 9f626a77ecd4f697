"""``helm install`` of both charts on a real node: the operator pod runs the locally built image with the
chart's default security context, passes its readiness probe, takes the leader Lease, and its metrics
Service answers from the host through its ClusterIP."""

from __future__ import annotations

import urllib.request

import pytest

from tests.support.cluster import Cluster
from tests.support.e2e import OPERATOR_IMAGE, OperatorRelease, eventually, kubectl_json

pytestmark = pytest.mark.e2e


def operator_pod(cluster: Cluster, release: OperatorRelease) -> dict[str, object]:
    pods = kubectl_json(
        cluster, "get", "pods", "-n", release.namespace, "-l", "app.kubernetes.io/name=mcp-operator"
    )["items"]
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    return dict(pods[0])


def test_operator_pod_is_ready_with_the_local_image_and_the_default_security_context(
    node_cluster: Cluster, operator_release: OperatorRelease
) -> None:
    node_cluster.kubectl(
        "wait",
        "-n",
        operator_release.namespace,
        "pod",
        "-l",
        "app.kubernetes.io/name=mcp-operator",
        "--for=condition=Ready",
        "--timeout=120s",
    )
    pod = operator_pod(node_cluster, operator_release)
    spec, status = pod["spec"], pod["status"]
    assert isinstance(spec, dict) and isinstance(status, dict)
    ready = {c["type"]: c["status"] for c in status["conditions"]}
    assert ready["Ready"] == "True", status  # the readiness probe (/readyz) really passed
    (container,) = spec["containers"]
    assert container["image"].startswith(OPERATOR_IMAGE)
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["securityContext"]["runAsNonRoot"] is True
    (running,) = status["containerStatuses"]
    assert running["restartCount"] == 0, running
    assert "running" in running["state"]


def test_operator_holds_the_leader_lease(node_cluster: Cluster, operator_release: OperatorRelease) -> None:
    pod_name = operator_pod(node_cluster, operator_release)["metadata"]["name"]  # type: ignore[index]

    def holder() -> str | None:
        lease = kubectl_json(
            node_cluster, "get", "lease", "-n", operator_release.namespace, "mcp-operator-leader"
        )
        identity = lease["spec"].get("holderIdentity") or ""
        return identity if identity.startswith(pod_name) else None

    assert eventually(holder, 60, "the operator pod holds the leader Lease").startswith(pod_name)


def test_metrics_service_is_scraped_from_the_host(
    node_cluster: Cluster, operator_release: OperatorRelease
) -> None:
    services = kubectl_json(node_cluster, "get", "services", "-n", operator_release.namespace)["items"]
    (metrics,) = [s for s in services if any(p["name"] == "metrics" for p in s["spec"]["ports"])]
    port = next(p["port"] for p in metrics["spec"]["ports"] if p["name"] == "metrics")
    url = f"http://{metrics['spec']['clusterIP']}:{port}/metrics"

    def scrape() -> str | None:
        with urllib.request.urlopen(url, timeout=5) as resp:
            text = resp.read().decode()
        return text if "controller_runtime_reconcile_total" in text else None

    text = eventually(scrape, 60, f"reconcile metrics at {url}")
    synced = [line for line in text.splitlines() if line.startswith("mcp_operator_informer_synced{")]
    assert synced, "no informer metrics"
    assert all(line.endswith(" 1.0") for line in synced), synced  # every informer has synced
