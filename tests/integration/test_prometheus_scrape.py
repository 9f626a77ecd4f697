"""A real Prometheus scrapes the operator, a proxy and the gateway, with the scrape config the chart's
ServiceMonitor and PodMonitor give (tests/support/scrape.py), and every query of
docs/grafana-dashboard.json returns data once a workload has served traffic.

A query naming a metric the processes do not export, or a label they do not carry, returns nothing and
fails the test, naming the panel.
"""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

import pytest

from controller.reconcilers.children import labels
from tests.fixtures.chart.charts import (
    GOLDEN_NAMESPACE,
    OPERATOR_CHART,
    load_values,
    render,
    rendered_objects,
)
from tests.support.cluster import ROOT, Cluster
from tests.support.data_plane import DataPlane, data_plane, traffic
from tests.support.kube import Api
from tests.support.operator_process import OperatorProcess, namespace_on
from tests.support.otlp import http_receiver, otlp_env
from tests.support.prometheus import Prometheus, running_prometheus
from tests.support.scrape import LocalPod, scrape_configs
from tests.support.waiting import eventually

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

DASHBOARD = ROOT / "docs" / "grafana-dashboard.json"
WORKLOADS = "team"
"""The namespace label the proxy and gateway targets carry (the operator's is the chart's release's)."""
EXPECTED_JOBS = sorted([*[f"{GOLDEN_NAMESPACE}/mcp-operator-data-plane"] * 2, "mcp-operator-metrics"])


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, expression) of every target of every panel, rows included."""
    queries: list[tuple[str, str]] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            queries.extend((panel["title"], t["expr"]) for t in panel.get("targets", []))
            walk(panel.get("panels", []))

    walk(json.loads(DASHBOARD.read_text())["panels"])
    return queries


def variables() -> dict[str, str]:
    """The dashboard's query variables, each set to the one namespace its ``label_values`` finds here."""
    templating = json.loads(DASHBOARD.read_text())["templating"]["list"]
    names = {v["name"] for v in templating if v["type"] == "query"}
    assert names == {"namespace", "workload_namespace"}, names
    return {"$workload_namespace": WORKLOADS, "$namespace": GOLDEN_NAMESPACE}


def substituted(expr: str) -> str:
    for name, value in variables().items():  # longest name first: $namespace is a prefix of neither
        expr = expr.replace(name, value)
    return expr


def local_pods(operator: OperatorProcess, plane: DataPlane) -> list[LocalPod]:
    """The processes with the labels their pods would carry: the operator's from the chart, the proxy's
    and gateway's from the operator's own label builder."""
    objects = rendered_objects(render(OPERATOR_CHART, load_values("monitoring")))
    (service,) = [o for o in objects if o["kind"] == "Service"]
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]

    def address(url: str) -> str:
        return url.removeprefix("http://")

    return [
        LocalPod(
            address=f"127.0.0.1:{operator.metrics_port}",
            namespace=GOLDEN_NAMESPACE,
            name="mcp-operator-7c9d8",
            labels=deployment["spec"]["template"]["metadata"]["labels"],
            port="metrics",
            container="operator",
            service=service["metadata"]["name"],
            service_labels=service["metadata"]["labels"],
        ),
        LocalPod(
            address(plane.proxy_url),
            WORKLOADS,
            "fetch-5f7b6",
            labels("MCPServer", "fetch", "proxy"),
            "http",
            "proxy",
        ),
        LocalPod(
            address(plane.gateway_url),
            WORKLOADS,
            "gw-6c4d9",
            labels("VirtualMCPServer", "gw", "gateway"),
            "http",
            "vmcp",
        ),
        LocalPod(
            "127.0.0.1:1", WORKLOADS, "fetch-server-0", labels("MCPServer", "fetch", "server"), "mcp", "mcp"
        ),
    ]


def monitors() -> list[dict[str, Any]]:
    objects = rendered_objects(render(OPERATOR_CHART, load_values("monitoring")))
    return [o for o in objects if o["kind"] in ("ServiceMonitor", "PodMonitor")]


def finite(result: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(sample["value"][1])) for sample in result)


async def test_prometheus_scrapes_the_chart_targets_and_every_dashboard_query_returns_data(
    mcp_crds: Cluster, tmp_path: Path
) -> None:
    async with namespace_on(mcp_crds.kubeconfig) as kube:
        # The default client-side rate limit (its wait is a dashboard panel) and leader election (another).
        operator = OperatorProcess(mcp_crds.kubeconfig, kube.ns, "--leader-elect=true")
        try:
            # Tracing on (to a real OTLP receiver): the dashboard's span counters must have data too.
            with (
                http_receiver() as (_, endpoint),
                data_plane(tmp_path / "plane", otlp_env(endpoint)) as plane,
            ):
                jobs = scrape_configs(monitors(), local_pods(operator, plane), interval="1s")
                config = {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "scrape_configs": jobs,
                }
                with running_prometheus(config, tmp_path / "prometheus") as prometheus:
                    targets = await asyncio.to_thread(prometheus.wait_targets_up, 3)
                    # The operator by its ServiceMonitor; proxy and gateway, not server, by the PodMonitor.
                    assert sorted(t["labels"]["job"] for t in targets) == EXPECTED_JOBS
                    # Traffic after the first scrapes, so every rate() and histogram has a change to show.
                    await kube.create(
                        "mcpservers",
                        {"kind": "MCPServer", "metadata": {"name": "fetch"}, "spec": {"image": "fetch:1"}},
                    )
                    await traffic(plane, calls=5)
                    await assert_dashboard_has_data(prometheus, plane, kube)
        finally:
            operator.stop()


async def assert_dashboard_has_data(prometheus: Prometheus, plane: DataPlane, kube: Api) -> None:
    queries = [(title, substituted(expr)) for title, expr in dashboard_queries()]
    assert len(queries) >= 15

    async def missing() -> list[str]:
        empty = []
        for title, expr in queries:
            if not finite(await asyncio.to_thread(prometheus.query, expr)):
                empty.append(f"{title}: {expr}")
        if empty:  # keep every rate above zero while Prometheus catches up: calls, and a reconcile
            await traffic(plane, calls=1)
            await kube.patch("mcpservers", "fetch", {"metadata": {"annotations": {"nudge": str(len(empty))}}})
        return empty

    async def none_missing() -> bool:
        return not await missing()

    try:
        await eventually(none_missing, within=90, what="every dashboard query to return data")
    except AssertionError:
        raise AssertionError("dashboard queries without data:\n" + "\n".join(await missing())) from None
