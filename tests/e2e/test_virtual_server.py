"""A VirtualMCPServer on a real node: one gateway endpoint over an MCPGroup of two MCPServers running in
pods and an MCPRemoteProxy in front of an in-cluster HTTP server, every tool prefixed with its member's
name, and ``status.discoveredBackends`` following a member that is deleted and applied again while calls
to the others keep working."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from tests.support.cluster import Cluster
from tests.support.e2e import (
    HEADERS_SERVER,
    TIME_SERVER_IMAGE,
    apply_resource,
    apply_server,
    call_tool,
    eventually,
    kubectl_json,
    python_pod,
    retry,
    service_base,
    tool_names,
    wait_ready,
)

pytestmark = pytest.mark.e2e

TIME_TOOLS = ["convert_time", "get_current_time"]
GATEWAY_SPEC = {
    "groupRef": {"name": "team"},
    "incomingAuth": {"type": "anonymous"},
    "config": {
        "aggregation": {
            "conflictResolution": "prefix",
            "conflictResolutionConfig": {"prefixFormat": "{workload}_"},
        }
    },
}


def prefixed(*members: str) -> list[str]:
    """The gateway's tools: each time server's two, and the remote member's one."""
    return sorted([*(f"{member}_{tool}" for member in members for tool in TIME_TOOLS), "remote_headers"])


def add_member(cluster: Cluster, namespace: str, name: str) -> None:
    spec = {"image": TIME_SERVER_IMAGE, "transport": "stdio", "groupRef": {"name": "team"}}
    apply_server(cluster, namespace, name, spec)


def backends(cluster: Cluster, namespace: str) -> dict[str, str]:
    """The gateway's discovered backends: name -> status."""
    vmcp = kubectl_json(cluster, "get", "virtualmcpserver", "-n", namespace, "gateway")
    return {b["name"]: b["status"] for b in vmcp.get("status", {}).get("discoveredBackends", [])}


async def lists(url: str, expected: list[str]) -> list[str]:
    names = await tool_names(url)
    assert names == expected, names
    return names


async def test_gateway_serves_every_members_prefixed_tools_and_follows_a_member_deleted_and_back(
    node_cluster: Cluster, workload_namespace: str
) -> None:
    ns = workload_namespace
    apply_resource(node_cluster, "MCPGroup", ns, "team", {"description": "e2e"})
    for member in ("alpha", "beta"):
        add_member(node_cluster, ns, member)
    remote = {
        "remoteUrl": f"{python_pod(node_cluster, ns, 'headers', HEADERS_SERVER)}/mcp",
        "allowPrivateEndpoint": True,
        "groupRef": {"name": "team"},
    }
    apply_resource(node_cluster, "MCPRemoteProxy", ns, "remote", remote)
    apply_resource(node_cluster, "VirtualMCPServer", ns, "gateway", GATEWAY_SPEC)
    for member in ("alpha", "beta"):
        wait_ready(node_cluster, ns, member)
    wait_ready(node_cluster, ns, "remote", kind="mcpremoteproxy")
    wait_ready(node_cluster, ns, "gateway", kind="virtualmcpserver")
    every = {"alpha": "ready", "beta": "ready", "remote": "ready"}
    eventually(lambda: backends(node_cluster, ns) == every, 120, "the three members discovered and ready")

    url = f"{service_base(node_cluster, ns, 'gateway')}/mcp"
    with anyio.fail_after(90):
        await retry(lambda: lists(url, prefixed("alpha", "beta")))
    answers: dict[str, Any] = {}
    for member in ("alpha", "beta"):
        answers[member] = await call_tool(url, f"{member}_get_current_time", {"timezone": "UTC"})
    assert all('"timezone": "UTC"' in text for text in answers.values()), answers
    remote_seen = json.loads(await call_tool(url, "remote_headers", {}))
    assert remote_seen["host"] == f"headers.{ns}.svc.cluster.local:8000", remote_seen  # via the remote proxy

    node_cluster.kubectl("delete", "mcpserver", "-n", ns, "beta", "--wait=true")
    left = {"alpha", "remote"}
    eventually(lambda: set(backends(node_cluster, ns)) == left, 120, "beta gone from discoveredBackends")
    with anyio.fail_after(90):
        await retry(lambda: lists(url, prefixed("alpha")))
    assert '"timezone": "UTC"' in await call_tool(url, "alpha_get_current_time", {"timezone": "UTC"})
    assert '"host"' in await call_tool(url, "remote_headers", {})  # the remote member still answers

    add_member(node_cluster, ns, "beta")
    wait_ready(node_cluster, ns, "beta")
    eventually(lambda: backends(node_cluster, ns) == every, 120, "beta discovered and ready again")
    with anyio.fail_after(90):
        await retry(lambda: lists(url, prefixed("alpha", "beta")))
    text = await call_tool(url, "beta_get_current_time", {"timezone": "Europe/Paris"})
    assert '"timezone": "Europe/Paris"' in text
