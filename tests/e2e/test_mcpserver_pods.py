"""MCPServers on a real node: the operator's pods really run, ``kubectl wait --for=condition=Ready`` returns,
``kubectl get mcpservers`` shows Running and the URL, and the official MCP SDK client lists and calls
tools from the host through the Service's ClusterIP (/mcp in both protocol eras, and /sse)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from mcp import Client

from tests.support.cluster import Cluster
from tests.support.e2e import (
    EVERYTHING_IMAGE,
    SERVER_LABELS,
    TIME_SERVER_IMAGE,
    apply_server,
    call_everywhere,
    eventually,
    inspector,
    kubectl_json,
    retry,
    service_base,
    text_of,
    wait_ready,
)

pytestmark = pytest.mark.e2e


def listed(cluster: Cluster, namespace: str) -> str:
    return cluster.kubectl("get", "mcpservers", "-n", namespace).stdout


async def test_stdio_server_is_ready_listed_and_called_through_its_service(
    node_cluster: Cluster, workload_namespace: str
) -> None:
    apply_server(node_cluster, workload_namespace, "time", {"image": TIME_SERVER_IMAGE, "transport": "stdio"})
    wait_ready(node_cluster, workload_namespace, "time")
    table = listed(node_cluster, workload_namespace)
    row = next(line for line in table.splitlines() if line.startswith("time "))
    assert "Running" in row, table
    assert f"http://time.{workload_namespace}.svc.cluster.local:8080" in row, table

    seen = await call_everywhere(
        service_base(node_cluster, workload_namespace, "time"), "get_current_time", {"timezone": "UTC"}
    )
    for front, (tools, text) in seen.items():
        assert tools == ["convert_time", "get_current_time"], front
        assert '"timezone": "UTC"' in text, (front, text)

    base = service_base(node_cluster, workload_namespace, "time")
    for path, transport in (("/mcp", "http"), ("/sse", "sse")):
        tools_answer = inspector(f"{base}{path}", "--transport", transport, "--method", "tools/list")
        assert sorted(t["name"] for t in tools_answer["tools"]) == ["convert_time", "get_current_time"], path
        called = inspector(
            f"{base}{path}", "--transport", transport, "--method", "tools/call",
            "--tool-name", "get_current_time", "--tool-arg", "timezone=UTC",
        )  # fmt: skip
        assert called["isError"] is False, called
        assert '"timezone": "UTC"' in called["content"][0]["text"], called


async def test_stdio_attach_survives_the_server_pod_being_deleted(
    node_cluster: Cluster, workload_namespace: str
) -> None:
    apply_server(node_cluster, workload_namespace, "time", {"image": TIME_SERVER_IMAGE, "transport": "stdio"})
    wait_ready(node_cluster, workload_namespace, "time")
    base = service_base(node_cluster, workload_namespace, "time")
    await call_everywhere(base, "get_current_time", {"timezone": "UTC"})

    selector = f"{SERVER_LABELS},app.kubernetes.io/instance=time"
    (old,) = kubectl_json(node_cluster, "get", "pods", "-n", workload_namespace, "-l", selector)["items"]
    node_cluster.kubectl("delete", "pod", "-n", workload_namespace, old["metadata"]["name"], "--wait=true")

    def replaced_and_ready() -> bool:
        pods = kubectl_json(node_cluster, "get", "pods", "-n", workload_namespace, "-l", selector)["items"]
        return any(
            p["metadata"]["uid"] != old["metadata"]["uid"]
            and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
            for p in pods
        )

    eventually(replaced_and_ready, 120, "a new server pod Ready")
    wait_ready(node_cluster, workload_namespace, "time")

    async def next_call() -> str:
        async with Client(f"{base}/mcp", mode="auto") as client:
            result = await client.call_tool("get_current_time", {"timezone": "Europe/Paris"})
            assert not result.is_error, text_of(result)
            return text_of(result)

    with anyio.fail_after(60):  # the proxy re-attaches to the new container
        text = await retry(next_call)
    assert '"timezone": "Europe/Paris"' in text


async def test_streamable_http_server_is_ready_and_called_through_its_service(
    node_cluster: Cluster, workload_namespace: str
) -> None:
    apply_server(
        node_cluster,
        workload_namespace,
        "everything",
        {
            "image": EVERYTHING_IMAGE,
            "transport": "streamable-http",
            "mcpPort": 3001,
            "args": ["streamableHttp"],
        },
    )
    wait_ready(node_cluster, workload_namespace, "everything")
    assert "Running" in listed(node_cluster, workload_namespace)
    seen = await call_everywhere(
        service_base(node_cluster, workload_namespace, "everything"), "echo", {"message": "through a Service"}
    )
    for front, (tools, text) in seen.items():
        assert "echo" in tools, front
        assert text == "Echo: through a Service", front


async def test_sse_server_is_ready_and_called_through_its_service(
    node_cluster: Cluster, workload_namespace: str
) -> None:
    """A server that speaks only legacy SSE (GET /sse, POST /message): the proxy reaches it through the
    headless Service and serves it to clients on /mcp (both eras) and /sse; status.url advertises /sse."""
    apply_server(
        node_cluster,
        workload_namespace,
        "legacy",
        {"image": EVERYTHING_IMAGE, "transport": "sse", "mcpPort": 3001, "args": ["sse"]},
    )
    wait_ready(node_cluster, workload_namespace, "legacy")
    table = listed(node_cluster, workload_namespace)
    row = next(line for line in table.splitlines() if line.startswith("legacy "))
    assert "Running" in row, table
    assert f"http://legacy.{workload_namespace}.svc.cluster.local:8080/sse" in row, table

    base = service_base(node_cluster, workload_namespace, "legacy")
    seen = await call_everywhere(base, "echo", {"message": "over sse"})
    for front, (tools, text) in seen.items():
        assert "echo" in tools, front
        assert text == "Echo: over sse", front
    tools_answer = inspector(f"{base}/sse", "--transport", "sse", "--method", "tools/list")
    assert "echo" in [t["name"] for t in tools_answer["tools"]], tools_answer


def test_kubectl_delete_removes_every_pod_and_child(node_cluster: Cluster, workload_namespace: str) -> None:
    apply_server(node_cluster, workload_namespace, "gone", {"image": TIME_SERVER_IMAGE, "transport": "stdio"})
    wait_ready(node_cluster, workload_namespace, "gone")
    selector = "app.kubernetes.io/instance=gone"
    kinds = "pods,deployments,statefulsets,services,configmaps,serviceaccounts,roles,rolebindings"
    before = kubectl_json(node_cluster, "get", kinds, "-n", workload_namespace, "-l", selector)["items"]
    assert {o["kind"] for o in before} >= {"Pod", "Deployment", "StatefulSet", "Service"}, before

    node_cluster.kubectl("delete", "mcpserver", "-n", workload_namespace, "gone", "--wait=true")

    def all_gone() -> bool:
        left = kubectl_json(node_cluster, "get", kinds, "-n", workload_namespace, "-l", selector)["items"]
        return not left

    eventually(all_gone, 120, "every child of the deleted MCPServer removed by garbage collection")


async def test_editing_the_args_rolls_the_server_and_calls_keep_working(
    node_cluster: Cluster, workload_namespace: str
) -> None:
    spec: dict[str, Any] = {"image": TIME_SERVER_IMAGE, "transport": "stdio"}
    apply_server(node_cluster, workload_namespace, "roll", spec)
    wait_ready(node_cluster, workload_namespace, "roll")
    selector = f"{SERVER_LABELS},app.kubernetes.io/instance=roll"
    (old,) = kubectl_json(node_cluster, "get", "pods", "-n", workload_namespace, "-l", selector)["items"]

    apply_server(
        node_cluster, workload_namespace, "roll", {**spec, "args": ["--local-timezone", "Asia/Tokyo"]}
    )

    def rolled_and_caught_up() -> bool:
        server = kubectl_json(node_cluster, "get", "mcpserver", "-n", workload_namespace, "roll")
        pods = kubectl_json(node_cluster, "get", "pods", "-n", workload_namespace, "-l", selector)["items"]
        new = [p for p in pods if p["metadata"]["uid"] != old["metadata"]["uid"]]
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in server["status"]["conditions"])
        caught_up = server["status"].get("observedGeneration") == server["metadata"]["generation"]
        return bool(new) and len(pods) == 1 and ready and caught_up

    eventually(
        rolled_and_caught_up, 180, "the server pod replaced with the new args, Ready, status caught up"
    )
    (pod,) = kubectl_json(node_cluster, "get", "pods", "-n", workload_namespace, "-l", selector)["items"]
    assert "Asia/Tokyo" in pod["spec"]["containers"][0]["args"]

    base = service_base(node_cluster, workload_namespace, "roll")

    async def local_time() -> str:
        async with Client(f"{base}/mcp", mode="auto") as client:
            result = await client.call_tool(
                "convert_time", {"source_timezone": "UTC", "time": "00:00", "target_timezone": "Asia/Tokyo"}
            )
            assert not result.is_error, text_of(result)
            return text_of(result)

    with anyio.fail_after(60):  # the proxy re-attaches to the new server container
        text = await retry(local_time)
    assert "Asia/Tokyo" in text
