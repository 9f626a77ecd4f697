"""The gateway's backend-health writer against the real kube-apiserver: it shares
``status.discoveredBackends`` with the operator through server-side apply, and writes only on change."""

from __future__ import annotations

from pathlib import Path

from kubernetes_asyncio import client

from gateway.vmcp.status_writer import StatusTarget, StatusWriter
from tests.support.cluster import Cluster
from tests.support.gateway_target import PLURAL, operator_apply, target_for
from tests.support.kube import GROUP, VERSION


async def test_gateway_health_and_operator_fields_coexist(
    mcp_crds: Cluster, api_client: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    custom = client.CustomObjectsApi(api_client)
    await custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "VirtualMCPServer",
            "metadata": {"name": "team"},
            "spec": {"groupRef": {"name": "g"}, "incomingAuth": {"type": "anonymous"}},
        },
    )
    members = [
        {"name": "git", "kind": "MCPServer", "url": "http://git.ns.svc:8080/mcp"},
        {"name": "time", "kind": "MCPServer", "url": "http://time.ns.svc:8080/mcp"},
    ]
    await operator_apply(
        api_client, namespace, {"phase": "Ready", "backendCount": 2, "discoveredBackends": members}
    )

    health = [
        {"name": "git", "health": "ready", "lastHealthCheck": "2026-11-25T10:00:00Z"},
        {
            "name": "time",
            "health": "unavailable",
            "lastError": "connection refused",
            "lastHealthCheck": "2026-11-25T10:00:00Z",
        },
    ]
    writer = StatusWriter(target_for(mcp_crds, namespace, tmp_path), lambda: health)
    try:
        assert await writer.sync() is True
        obj = await custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "team")
        items = {i["name"]: i for i in obj["status"]["discoveredBackends"]}
        assert items["git"] == {**members[0], "status": "ready", "lastHealthCheck": "2026-11-25T10:00:00Z"}
        assert items["time"]["status"] == "unavailable" and items["time"]["message"] == "connection refused"
        assert items["time"]["url"] == members[1]["url"]  # the operator's field is untouched
        assert obj["status"]["phase"] == "Ready"

        # Only the timestamp moved: no write. The operator re-applies its fields: the health stays.
        health[0]["lastHealthCheck"] = "2026-11-25T10:00:10Z"
        assert await writer.sync() is False and writer.writes == 1
        await operator_apply(
            api_client, namespace, {"phase": "Degraded", "backendCount": 1, "discoveredBackends": members}
        )
        obj = await custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "team")
        items = {i["name"]: i for i in obj["status"]["discoveredBackends"]}
        assert items["time"]["status"] == "unavailable" and obj["status"]["phase"] == "Degraded"
        managers = {m["manager"] for m in obj["metadata"]["managedFields"]}
        assert {"mcp-operator", "mcp-operator-vmcp"} <= managers

        # Recovery is written.
        health[1] = {"name": "time", "health": "ready", "lastHealthCheck": "2026-11-25T10:00:20Z"}
        assert await writer.sync() is True
        obj = await custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "team")
        time_item = next(i for i in obj["status"]["discoveredBackends"] if i["name"] == "time")
        assert time_item["status"] == "ready" and "message" not in time_item
    finally:
        await writer.transport.close()


def test_target_from_environment(tmp_path: Path) -> None:
    assert StatusTarget.from_env({}) is None
    target = StatusTarget.from_env(
        {
            "VMCP_NAME": "team",
            "VMCP_NAMESPACE": "tools",
            "KUBERNETES_SERVICE_HOST": "10.96.0.1",
            "KUBERNETES_SERVICE_PORT": "443",
            "VMCP_KUBERNETES_CA": str(tmp_path / "missing.crt"),
        }
    )
    assert target is not None
    assert target.api_server == "https://10.96.0.1:443"
    assert (
        target.status_path == "/apis/mcp-operator.dev/v1beta1/namespaces/tools/virtualmcpservers/team/status"
    )
    assert target.ca_file is None  # no CA file there: the system trust store is used
