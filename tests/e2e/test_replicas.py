"""Two proxy pods and two gateway pods behind their Services, sharing sessions through Redis in a pod.

Redis runs from the locally built image (Debian's redis-server). Each request of a session's SDK client
opens a new connection to the Service (no keep-alive), so kube-proxy picks a pod per request: a
2025-11-25 session opened on one pod continues on the other from its Redis record. Every session of both
protocol eras succeeds, and each pod's own metrics show that it served requests and continued sessions
that the other pod opened (``mcp_sessions_shared_total{event="resumed"}``).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.support.cluster import Cluster
from tests.support.e2e import (
    EVERYTHING_IMAGE,
    REDIS_IMAGE,
    apply_manifest,
    apply_resource,
    apply_server,
    eventually,
    kubectl_json,
    service_base,
    text_of,
    wait_ready,
)
from tests.support.processes import http_get
from tests.support.replicas import metric_value

pytestmark = pytest.mark.e2e

SESSIONS = 12
"""Sessions per (workload, era): enough that both pods open some and continue others."""
FRONTS = {  # workload -> (kind, component label, port, tool)
    "everything": ("mcpserver", "proxy", 8080, "echo"),
    "gateway": ("virtualmcpserver", "gateway", 4483, "everything_echo"),
}


def redis_pod(cluster: Cluster, namespace: str) -> None:
    """Pod and Service ``redis`` (port 6379) from the local image, Ready once it accepts connections."""
    labels = {"app": "redis"}
    probe = {"tcpSocket": {"port": 6379}, "periodSeconds": 1}
    container = {"name": "redis", "image": REDIS_IMAGE, "readinessProbe": probe}
    meta = {"name": "redis", "namespace": namespace}
    apply_manifest(
        cluster,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {**meta, "labels": labels},
            "spec": {"containers": [container]},
        },
    )
    service = {"selector": labels, "ports": [{"port": 6379, "targetPort": 6379}]}
    apply_manifest(cluster, {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": service})
    cluster.kubectl("wait", "-n", namespace, "pod/redis", "--for=condition=Ready", "--timeout=120s")


def pod_urls(cluster: Cluster, namespace: str, name: str, component: str, port: int) -> list[str]:
    """http://POD_IP:PORT of the workload's Ready front pods (two, once both run)."""
    selector = f"app.kubernetes.io/instance={name},app.kubernetes.io/component={component}"

    def ready() -> list[str] | None:
        pods = kubectl_json(cluster, "get", "pods", "-n", namespace, "-l", selector)["items"]
        urls = [
            f"http://{p['status']['podIP']}:{port}"
            for p in pods
            if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
        ]
        return urls if len(urls) == 2 else None

    found: list[str] = eventually(ready, 180, f"two Ready {component} pods of {name}")
    return found


def counts(urls: list[str]) -> list[tuple[float, float]]:
    """Per pod: (requests served, sessions continued that another pod opened)."""
    out = []
    for url in urls:
        text = http_get(f"{url}/metrics")[1]
        served = metric_value(text, "mcp_proxy_requests_total")
        out.append((served, metric_value(text, "mcp_sessions_shared_total", event="resumed")))
    return out


async def session(base: str, mode: str, tool: str, text: str) -> str:
    """One SDK session through the Service, every request on a new connection: list, then two calls."""
    no_reuse = httpx2.Limits(max_keepalive_connections=0)
    http = httpx2.AsyncClient(limits=no_reuse, timeout=httpx2.Timeout(60.0))
    async with http, Client(streamable_http_client(f"{base}/mcp", http_client=http), mode=mode) as client:
        assert tool in {t.name for t in (await client.list_tools()).tools}
        await client.call_tool(tool, {"message": f"{text}-warm"})
        result = await client.call_tool(tool, {"message": text})
    return text_of(result)


async def sessions(base: str, mode: str, tool: str) -> list[str]:
    """``SESSIONS`` sessions, four at a time; the failures."""
    failures: list[str] = []
    limiter = anyio.Semaphore(4)

    async def run(i: int) -> None:
        async with limiter:
            try:
                answer = await session(base, mode, tool, f"{mode}-{i}")
                if answer != f"Echo: {mode}-{i}":
                    failures.append(f"session {i}: {answer!r}")
            except Exception as exc:  # every failure is reported, not only the first
                failures.append(f"session {i}: {exc!r}")

    async with anyio.create_task_group() as tg:
        for i in range(SESSIONS):
            tg.start_soon(run, i)
    return failures


def deploy(cluster: Cluster, ns: str) -> None:
    redis_pod(cluster, ns)
    apply_resource(cluster, "MCPGroup", ns, "team", {"description": "replicas"})

    def storage(prefix: str) -> dict[str, Any]:
        return {"provider": "redis", "address": "redis:6379", "keyPrefix": prefix}

    server = {
        "image": EVERYTHING_IMAGE,
        "transport": "streamable-http",
        "mcpPort": 3001,
        "args": ["streamableHttp"],
        "groupRef": {"name": "team"},
        "replicas": 2,
        "sessionStorage": storage("p:"),
        "podDisruptionBudget": {"maxUnavailable": 1},
    }
    apply_server(cluster, ns, "everything", server)
    gateway = {
        "groupRef": {"name": "team"},
        "incomingAuth": {"type": "anonymous"},
        "replicas": 2,
        "sessionStorage": storage("g:"),
    }
    apply_resource(cluster, "VirtualMCPServer", ns, "gateway", gateway)


def storage_reachable(cluster: Cluster, kind: str, ns: str, name: str) -> bool:
    conditions = kubectl_json(cluster, "get", kind, "-n", ns, name).get("status", {}).get("conditions", [])
    return any(c["type"] == "SessionStorageReachable" and c["status"] == "True" for c in conditions)


async def test_sessions_of_both_eras_continue_across_two_pods_behind_each_service(
    node_cluster: Cluster, workload_namespace: str
) -> None:
    ns = workload_namespace
    deploy(node_cluster, ns)
    for name, (kind, *_) in FRONTS.items():
        wait_ready(node_cluster, ns, name, kind=kind)
        # The operator reaches the pods' Redis by its short name, as the pods do.
        eventually(partial(storage_reachable, node_cluster, kind, ns, name), 90, f"{name}: Redis answers")
    budget = kubectl_json(node_cluster, "get", "poddisruptionbudget", "-n", ns, "everything")
    assert budget["spec"]["maxUnavailable"] == 1

    for name, (_, component, port, tool) in FRONTS.items():
        pods = pod_urls(node_cluster, ns, name, component, port)
        base = service_base(node_cluster, ns, name)
        for mode in ("legacy", "auto"):
            before = counts(pods)
            with anyio.fail_after(240):
                failures = await sessions(base, mode, tool)
            assert failures == [], f"{name} {mode}: {len(failures)} of {SESSIONS} failed, e.g. {failures[:2]}"
            after = counts(pods)
            served = [a[0] - b[0] for a, b in zip(after, before, strict=True)]
            resumed = [a[1] - b[1] for a, b in zip(after, before, strict=True)]
            assert all(n > 0 for n in served), (name, mode, served)  # both pods answered requests
            if mode == "legacy":  # each pod continued sessions the other one opened
                assert all(n > 0 for n in resumed), (name, mode, resumed)
            else:  # 2026-07-28 requests carry no session
                assert resumed == [0, 0], (name, mode, resumed)
