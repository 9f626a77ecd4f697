"""A VirtualMCPServer's ``config.telemetry`` (ToolHive's flat settings): its rules name the field, and the
gateway environment it becomes is what the same settings in an MCPTelemetryConfig give."""

from __future__ import annotations

from typing import Any

import pytest

from api.mcptelemetryconfig import InlineTelemetry, inline_telemetry_rules
from api.validation import parse_and_validate
from controller.reconcilers.telemetry_refs import inline_telemetry
from telemetry.settings import metrics_settings_from_env, settings_from_env

TOOLHIVE_EXAMPLE = {
    "enablePrometheusMetricsPath": True,
    "endpoint": "otel-collector:4317",
    "insecure": True,
    "metricsEnabled": True,
    "samplingRate": "0.1",
    "serviceName": "my-vmcp",
    "tracingEnabled": True,
    "useLegacyAttributes": True,
}


def gateway(telemetry: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "mcp-operator.dev/v1beta1",
        "kind": "VirtualMCPServer",
        "metadata": {"name": "my-vmcp", "namespace": "t"},
        "spec": {
            "groupRef": {"name": "g"},
            "incomingAuth": {"type": "anonymous"},
            "config": {"telemetry": telemetry},
            **spec,
        },
    }


def env_of(telemetry: dict[str, Any]) -> dict[str, str]:
    rendered = inline_telemetry(InlineTelemetry.model_validate(telemetry), "fallback-name").env
    return {variable["name"]: variable["value"] for variable in rendered}


def test_toolhive_example_is_accepted_and_sends_both_signals() -> None:
    _, problems = parse_and_validate(gateway(TOOLHIVE_EXAMPLE))
    assert problems == []
    env = env_of(TOOLHIVE_EXAMPLE)
    traces = settings_from_env(env, "unused")
    metrics = metrics_settings_from_env(env, "unused")
    assert traces is not None and metrics is not None
    assert traces.endpoint == "http://otel-collector:4317", "insecure: plain HTTP to host:port"
    assert traces.service_name == metrics.service_name == "my-vmcp"
    assert traces.sampling_rate == 0.1
    assert traces.legacy_attributes


def test_service_name_version_and_attributes() -> None:
    env = env_of(
        {
            "endpoint": "https://collector.example:4318",
            "tracingEnabled": True,
            "serviceVersion": "1.2.3",
            "customAttributes": {"deployment.environment": "prod"},
            "useLegacyAttributes": False,
        }
    )
    traces = settings_from_env(env, "unused")
    assert traces is not None
    assert traces.service_name == "fallback-name", "unset serviceName: the VirtualMCPServer's name"
    assert traces.resource_attributes == {"deployment.environment": "prod", "service.version": "1.2.3"}
    assert traces.sampling_rate == 0.05, "ToolHive's default rate"
    assert not traces.legacy_attributes
    assert metrics_settings_from_env(env, "unused") is None, "metricsEnabled unset: no OTLP metrics"


@pytest.mark.parametrize(
    ("telemetry", "field", "says"),
    [
        ({"endpoint": "c:4318"}, "spec.config.telemetry.endpoint", "no signal is enabled"),
        ({"tracingEnabled": True}, "spec.config.telemetry.endpoint", "is required"),
        ({"endpoint": "ftp://c", "tracingEnabled": True}, "spec.config.telemetry.endpoint", "http(s) URL"),
        ({"prometheusPort": 9464}, "spec.config.telemetry.prometheusPort", "not supported yet"),
        ({"metricsOnTransportPort": False}, "spec.config.telemetry.metricsOnTransportPort", "MCP port"),
        ({"environmentVariables": ["ENV"]}, "spec.config.telemetry.environmentVariables", "not supported"),
        ({"caCertPath": "/ca.pem"}, "spec.config.telemetry.caCertPath", "not supported yet"),
    ],
)
def test_each_problem_names_its_field(telemetry: dict[str, Any], field: str, says: str) -> None:
    found = inline_telemetry_rules(
        InlineTelemetry.model_validate(telemetry), "spec.config.telemetry", referenced=False
    )
    assert [p.field for p in found] == [field], found
    assert says in found[0].message


def test_not_together_with_a_shared_config() -> None:
    _, problems = parse_and_validate(gateway(TOOLHIVE_EXAMPLE, telemetryConfigRef={"name": "shared"}))
    assert [(p.field, p.message) for p in problems] == [
        ("spec.config.telemetry", "is set together with spec.telemetryConfigRef; keep one of the two")
    ]
