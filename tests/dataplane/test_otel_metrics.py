"""OTLP metrics from the proxy and the gateway that served traffic, received by a real OTLP receiver in this
process (tests/support/otlp.py), under ToolHive's instrument names with the right counts, the exporter's
headers and the resource attributes; over gRPC too; and a metrics collector that is down never slows or
fails MCP traffic."""

from __future__ import annotations

from pathlib import Path

import httpx2
import pytest
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric

from tests.dataplane.test_tracing import PROXY, call, traceparent
from tests.dataplane.test_tracing_faults import (
    EXPORT_TIMEOUT_MS,
    assert_calls_never_wait_for_export,
    assert_one_warning,
    collector,
    sample,
)
from tests.support.data_plane import BACKEND, data_plane
from tests.support.gateway_processes import wait_until
from tests.support.otlp import Receiver, grpc_receiver, http_receiver, otlp_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

GATEWAY = "gw"
"""The gateway's service name (its config's ``name``)."""
METRICS_ONLY = {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRIC_EXPORT_INTERVAL": "300"}


def attributes(point: object) -> dict[str, str]:
    return {a.key: a.value.string_value for a in point.attributes}  # type: ignore[attr-defined]


def tool_calls(metric: Metric | None, tool: str, status: str = "success") -> int:
    if metric is None:
        return 0
    return sum(
        p.as_int
        for p in metric.sum.data_points
        if attributes(p)["tool"] == tool and attributes(p)["status"] == status
    )


def wait_for_calls(receiver: Receiver, service: str, tool: str, count: int) -> None:
    def arrived() -> bool:
        return tool_calls(receiver.latest(service, "toolhive_mcp_tool_calls"), tool) >= count

    wait_until(arrived, timeout=30)


async def test_the_proxy_and_the_gateway_export_toolhive_instruments_with_the_right_counts(
    tmp_path: Path,
) -> None:
    settings = {
        **METRICS_ONLY,
        "OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=team%20a",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test",
    }
    with (
        http_receiver() as (receiver, endpoint),
        data_plane(tmp_path, otlp_env(endpoint, **settings)) as plane,
    ):
        for index in range(3):
            reply = await call(
                plane.gateway_url, traceparent()[2], name=f"{BACKEND}_add", arguments={"a": index, "b": 1}
            )
            assert str(index + 1) in str(reply)
        await call(plane.proxy_url, traceparent()[2], name="add", arguments={"a": 1, "b": 1})
        wait_for_calls(receiver, GATEWAY, f"{BACKEND}_add", 3)
        wait_for_calls(receiver, PROXY, "add", 4)

        proxy_calls = receiver.latest(PROXY, "toolhive_mcp_tool_calls")
        assert tool_calls(proxy_calls, "add") == 4, "three through the gateway, one direct"
        assert tool_calls(receiver.latest(GATEWAY, "toolhive_mcp_tool_calls"), f"{BACKEND}_add") == 3
        requests = receiver.latest(PROXY, "toolhive_mcp_requests")
        assert requests is not None and requests.sum.is_monotonic
        call_points = [p for p in requests.sum.data_points if attributes(p)["mcp_method"] == "tools/call"]
        assert sum(p.as_int for p in call_points) == 4
        assert {attributes(p)["server"] for p in call_points} == {PROXY}
        assert {attributes(p)["transport"] for p in call_points} == {"streamable-http"}
        duration = receiver.latest(PROXY, "mcp.server.operation.duration")
        assert duration is not None and duration.unit == "s"
        (point,) = [
            p for p in duration.histogram.data_points if attributes(p)["mcp.method.name"] == "tools/call"
        ]
        assert point.count == 4 and sum(point.bucket_counts) == 4
        backends = receiver.latest(GATEWAY, "toolhive_vmcp_backends_discovered")
        assert backends is not None and [p.as_int for p in backends.gauge.data_points] == [1]
        own = receiver.latest(PROXY, "mcp_proxy_requests")
        assert own is not None, "every /metrics family is exported under its own name too"
        assert not [s for s in receiver.spans if s.service in (PROXY, GATEWAY)], "OTEL_TRACES_EXPORTER=none"
        metrics = httpx2.get(f"{plane.proxy_url}/metrics").text
        assert "mcp_metrics_points_exported_total" in metrics
        assert {"x-tenant": "team a"}.items() <= receiver.metric_headers[-1].items(), "the exporter's headers"
        assert receiver.metric_resources[-1]["deployment.environment"] == "test"


async def test_the_grpc_exporter_delivers_the_proxy_metrics(tmp_path: Path) -> None:
    env = otlp_env("", OTEL_EXPORTER_OTLP_PROTOCOL="grpc", OTEL_EXPORTER_OTLP_INSECURE="true", **METRICS_ONLY)
    with grpc_receiver() as (receiver, endpoint):
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
        with data_plane(tmp_path, env) as plane:
            await call(plane.proxy_url, traceparent()[2], name="add", arguments={"a": 1, "b": 1})
            wait_for_calls(receiver, PROXY, "add", 1)


WARNING = "metric points could not be exported"


@pytest.mark.parametrize("fault", ["wrong port", "silent"])
async def test_a_broken_metrics_collector_never_slows_or_fails_calls(tmp_path: Path, fault: str) -> None:
    with collector(fault) as endpoint:
        env = otlp_env(endpoint, **METRICS_ONLY, OTEL_EXPORTER_OTLP_TIMEOUT=str(EXPORT_TIMEOUT_MS))
        with data_plane(tmp_path, env) as plane:
            await assert_calls_never_wait_for_export(plane.proxy_url)

            def dropped() -> float:
                metrics = httpx2.get(f"{plane.proxy_url}/metrics").text
                return sample(metrics, 'mcp_metrics_points_dropped_total{reason="export_failed"}')

            wait_until(lambda: dropped() > 0, timeout=60)
            assert_one_warning(plane.proxy.log, WARNING)
