"""An MCPToolConfig on a real node: the proxy in front of a server exposes only the filtered tools, and
editing the filter rolls the proxy alone (the server pod and its process stay) while calls keep working."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from tests.support.cluster import Cluster
from tests.support.e2e import (
    TIME_SERVER_IMAGE,
    apply_resource,
    apply_server,
    call_tool,
    eventually,
    kubectl_json,
    retry,
    server_pods,
    service_base,
    tool_names,
    wait_ready,
)

pytestmark = pytest.mark.e2e

PROXY_LABELS = "app.kubernetes.io/name=mcpserver,app.kubernetes.io/component=proxy"


def proxy_pods(cluster: Cluster, namespace: str, name: str) -> list[dict[str, Any]]:
    selector = f"{PROXY_LABELS},app.kubernetes.io/instance={name}"
    return list(kubectl_json(cluster, "get", "pods", "-n", namespace, "-l", selector)["items"])


def is_ready(pod: dict[str, Any]) -> bool:
    conditions = pod["status"].get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


async def test_editing_the_tool_filter_rolls_only_the_proxy_and_calls_keep_working(
    node_cluster: Cluster, workload_namespace: str
) -> None:
    ns = workload_namespace
    apply_resource(node_cluster, "MCPToolConfig", ns, "only", {"toolsFilter": ["get_current_time"]})
    spec = {"image": TIME_SERVER_IMAGE, "transport": "stdio", "toolConfigRef": {"name": "only"}}
    apply_server(node_cluster, ns, "filtered", spec)
    wait_ready(node_cluster, ns, "filtered")
    url = f"{service_base(node_cluster, ns, 'filtered')}/mcp"
    with anyio.fail_after(60):
        assert await retry(lambda: tool_names(url)) == ["get_current_time"]
    (server_before,) = server_pods(node_cluster, ns, "filtered")
    (proxy_before,) = proxy_pods(node_cluster, ns, "filtered")

    apply_resource(node_cluster, "MCPToolConfig", ns, "only", {"toolsFilter": ["convert_time"]})

    def proxy_rolled() -> bool:
        pods = proxy_pods(node_cluster, ns, "filtered")
        uids = {p["metadata"]["uid"] for p in pods}
        return len(pods) == 1 and proxy_before["metadata"]["uid"] not in uids and is_ready(pods[0])

    eventually(proxy_rolled, 120, "the proxy pod replaced by one Ready with the new filter")
    wait_ready(node_cluster, ns, "filtered")
    (server_after,) = server_pods(node_cluster, ns, "filtered")
    assert server_after["metadata"]["uid"] == server_before["metadata"]["uid"]  # the server pod stayed
    assert server_after["status"]["containerStatuses"][0]["restartCount"] == 0  # and so did its process

    async def filtered_anew() -> list[str]:
        names = await tool_names(url)
        assert names == ["convert_time"], names
        return names

    with anyio.fail_after(60):  # the Service's endpoints follow the new proxy pod
        await retry(filtered_anew)
    text = await call_tool(
        url, "convert_time", {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}
    )
    assert "Asia/Tokyo" in text
