"""The operator's own tracing, configured by its flags: a span per reconcile reaches a real OTLP receiver,
and an invalid tracing flag stops the start naming the setting."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from tests.support.cluster import Cluster
from tests.support.operator_process import OperatorProcess, namespace_on
from tests.support.otlp import ReceivedSpan, http_receiver
from tests.support.processes import MCP_OPERATOR

pytestmark = pytest.mark.timeout(180)


async def test_each_reconcile_is_a_span_sent_to_the_flag_named_collector(mcp_crds: Cluster) -> None:
    with http_receiver() as (receiver, endpoint):
        async with namespace_on(mcp_crds.kubeconfig) as kube:
            operator = OperatorProcess(
                mcp_crds.kubeconfig,
                kube.ns,
                f"--otel-exporter-otlp-endpoint={endpoint}",
                "--otel-resource-attributes=deployment.environment=test",
            )
            try:
                await kube.create(
                    "mcpservers",
                    {"kind": "MCPServer", "metadata": {"name": "traced"}, "spec": {"image": "x:1"}},
                )

                def reconciled(spans: list[ReceivedSpan]) -> bool:
                    return any(s.attributes.get("k8s.object.name") == "traced" for s in spans)

                spans = await asyncio.to_thread(receiver.wait, reconciled, 60)
            finally:
                operator.stop()
    (span, *_) = [s for s in spans if s.attributes.get("k8s.object.name") == "traced"]
    assert span.name == "reconcile mcpserver"
    assert span.service == "mcp-operator"
    assert span.attributes["k8s.namespace.name"] == kube.ns
    assert len(span.attributes["reconcile.id"]) == 32


def test_an_invalid_tracing_flag_stops_the_start_naming_it(cluster: Cluster) -> None:
    result = subprocess.run(
        [
            str(MCP_OPERATOR),
            "run",
            f"--kubeconfig={cluster.kubeconfig}",
            "--otel-exporter-otlp-endpoint=http://collector:4318",
            "--otel-traces-sampler-arg=2",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "OTEL_TRACES_SAMPLER_ARG: 2 is out of range" in result.stderr
