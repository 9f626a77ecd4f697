"""``hack/bench_pods``: MCPServers in real pods on the local node; writes the "MCPServers in real pods"
section of docs/benchmarks.md.

Brings up (or reuses) the node of ``hack/cluster up --node`` on instance MCP_OPERATOR_CLUSTER (default
"e2e"), imports the locally built images, installs both charts in a namespace of its own, then per run:

1. ``kubectl apply`` of a stdio MCPServer (mcp-server-time) and of a streamable-HTTP one
   (server-everything), each in a fresh namespace: seconds until Ready=True with its pods running;
2. ``tools/call`` (``echo``) latency from the host, median of N sequential calls after 10 warm-ups,
   through the MCPServer's Service ClusterIP (kube-proxy, then the proxy pod) and straight to the server
   pod's IP and port.

Usage: hack/bench_pods [--runs R] [--calls N] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from hack.benchmarks.common import write_section
from hack.benchmarks.pods_report import BEGIN, DIRECT, END, READY_HTTP, READY_STDIO, VIA_SERVICE, render
from tests.fixtures.chart.charts import CRD_CHART, OPERATOR_CHART, adopt_crds, helm_config, unique
from tests.support.cluster import Cluster, cluster_env
from tests.support.e2e import (
    EVERYTHING_IMAGE,
    OPERATOR_IMAGE,
    TIME_SERVER_IMAGE,
    apply_server,
    hack,
    server_pods,
    service_base,
    wait_accepting,
    wait_ready,
)

IMAGES = ["mcp-operator", "mcp-server-time", "server-everything"]
HTTP_SPEC = {
    "image": EVERYTHING_IMAGE,
    "transport": "streamable-http",
    "mcpPort": 3001,
    "args": ["streamableHttp"],
}
STDIO_SPEC = {"image": TIME_SERVER_IMAGE, "transport": "stdio"}


def node() -> Cluster:
    instance = os.environ.get("MCP_OPERATOR_CLUSTER", "e2e")
    env = cluster_env(instance)
    up = hack(env, "up", "--node")
    hack(env, "images", *IMAGES)
    kubeconfig = up.stdout.strip().splitlines()[-1].split("=", 1)[1]
    return Cluster(kubeconfig=Path(kubeconfig), instance=instance, env=env)


def seconds_to_ready(cluster: Cluster, spec: dict[str, Any]) -> tuple[str, float]:
    """A fresh namespace with MCPServer ``s`` applied; seconds from the apply to Ready with pods running."""
    namespace = unique("bench")
    cluster.kubectl("create", "namespace", namespace)
    started = time.monotonic()
    apply_server(cluster, namespace, "s", spec)
    wait_ready(cluster, namespace, "s")
    elapsed = time.monotonic() - started
    (pod,) = server_pods(cluster, namespace, "s")
    assert "running" in pod["status"]["containerStatuses"][0]["state"], pod["status"]
    return namespace, elapsed


async def median_call_ms(url: str, calls: int) -> float:
    async with Client(url, mode="auto") as client:
        await client.list_tools()
        samples = []
        for i in range(calls + 10):
            t0 = time.perf_counter()
            result = await client.call_tool("echo", {"message": "x"})
            if result.is_error:
                raise RuntimeError(f"echo failed at {url}: {result.content}")
            if i >= 10:
                samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def one_run(cluster: Cluster, calls: int) -> dict[str, float]:
    stdio_ns, stdio_s = seconds_to_ready(cluster, STDIO_SPEC)
    http_ns, http_s = seconds_to_ready(cluster, HTTP_SPEC)
    try:
        via_service = f"{service_base(cluster, http_ns, 's')}/mcp"
        (pod,) = server_pods(cluster, http_ns, "s")
        address = (pod["status"]["podIP"], 3001)
        wait_accepting(address, "the server pod")
        return {
            READY_STDIO: stdio_s,
            READY_HTTP: http_s,
            VIA_SERVICE: anyio.run(median_call_ms, via_service, calls),
            DIRECT: anyio.run(median_call_ms, f"http://{address[0]}:{address[1]}/mcp", calls),
        }
    finally:
        for namespace in (stdio_ns, http_ns):
            cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def measure(cluster: Cluster, runs: int, calls: int) -> dict[str, list[float]]:
    namespace = unique("mcp-bench")
    cluster.kubectl("create", "namespace", namespace)
    values = {"image": {"repository": OPERATOR_IMAGE, "tag": "dev", "pullPolicy": "IfNotPresent"}}
    adopt_crds(cluster, "mcp-operator-crds", namespace)
    measured: dict[str, list[float]] = {}
    with helm_config(cluster, namespace) as cfg:
        cfg.install(CRD_CHART, "mcp-operator-crds", namespace=namespace, timeout=120)
        cfg.install(OPERATOR_CHART, "mcp-operator", values, namespace=namespace, timeout=300)
        cluster.kubectl("wait", "-n", namespace, "--for=condition=Available", "deployment", "--all")
        try:
            for _ in range(runs):
                for name, value in one_run(cluster, calls).items():
                    measured.setdefault(name, []).append(value)
        finally:
            cfg.uninstall("mcp-operator")
            cfg.uninstall("mcp-operator-crds")
            cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    return measured


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    runs = measure(node(), args.runs, args.calls)
    load = Path("/proc/loadavg").read_text().split()[:3]
    machine_line = (
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, one local node (Kubernetes v1.20.2, "
        f"containerd, kube-proxy iptables), Python {platform.python_version()}, mcp {version('mcp')}; "
        f"load average at the end: {' '.join(load)}."
    )
    text = render(runs, args.calls, machine_line)
    print(text)
    if not args.no_write:
        write_section(BEGIN, END, f"{BEGIN}\n{text}\n{END}")
    return 0
