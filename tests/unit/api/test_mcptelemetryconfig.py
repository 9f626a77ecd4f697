"""MCPTelemetryConfig's rules (each problem names the field) and the proxy environment it becomes."""

from __future__ import annotations

from typing import Any

import pytest

from api.mcptelemetryconfig import MCPTelemetryConfig, MCPTelemetryConfigReference, telemetry_config_rules
from controller.reconcilers.telemetry_build import telemetry_env, with_telemetry_env
from telemetry.settings import settings_from_env

BASE = {"enabled": True, "endpoint": "collector:4318", "insecure": True, "tracing": {"enabled": True}}


def config(**otel: Any) -> MCPTelemetryConfig:
    raw = {"metadata": {"name": "otel", "namespace": "t"}, "spec": {"openTelemetry": {**BASE, **otel}}}
    return MCPTelemetryConfig.model_validate(raw)


def problems(**otel: Any) -> list[tuple[str, str]]:
    return [(p.field, p.message) for p in telemetry_config_rules(config(**otel).spec)]


def test_toolhive_example_is_valid() -> None:
    assert problems() == []


@pytest.mark.parametrize(
    ("otel", "field", "says"),
    [
        ({"metrics": {"enabled": True}}, "spec.openTelemetry.metrics.enabled", "not supported yet"),
        ({"useLegacyAttributes": True}, "spec.openTelemetry.useLegacyAttributes", "not supported yet"),
        (
            {"caBundleRef": {"configMapRef": {"name": "ca"}}},
            "spec.openTelemetry.caBundleRef",
            "not supported yet",
        ),
        ({"tracing": {"enabled": False}}, "spec.openTelemetry.endpoint", "no signal is enabled"),
        ({"endpoint": None}, "spec.openTelemetry.endpoint", "is required when tracing is enabled"),
        ({"endpoint": "ftp://c"}, "spec.openTelemetry.endpoint", "is not host:port or an http(s) URL"),
        ({"endpoint": "http://c:4318", "insecure": False}, "spec.openTelemetry.insecure", "must be true"),
        (
            {
                "headers": {"x-api-key": "a"},
                "sensitiveHeaders": [{"name": "X-API-Key", "secretKeyRef": {"name": "s", "key": "k"}}],
            },
            "spec.openTelemetry.sensitiveHeaders[0].name",
            "also in headers",
        ),
    ],
)
def test_each_problem_names_its_field(otel: dict[str, Any], field: str, says: str) -> None:
    found = problems(**otel)
    assert [f for f, _ in found] == [field], found
    assert says in found[0][1]


def test_prometheus_off_is_refused_because_metrics_are_always_served() -> None:
    raw = {"metadata": {"name": "p", "namespace": "t"}, "spec": {"prometheus": {"enabled": False}}}
    found = telemetry_config_rules(MCPTelemetryConfig.model_validate(raw).spec)
    assert [p.field for p in found] == ["spec.prometheus.enabled"]


def test_the_env_is_what_the_proxy_reads() -> None:
    env = telemetry_env(
        config(resourceAttributes={"team": "a b"}, tracing={"enabled": True}),
        MCPTelemetryConfigReference(name="otel"),
        "fetch",
    )
    plain = {e["name"]: e["value"] for e in env}
    settings = settings_from_env(plain, "unused")
    assert settings is not None
    assert settings.endpoint == "http://collector:4318"
    assert settings.service_name == "fetch", "the workload's name unless serviceName is given"
    assert settings.sampling_rate == 0.05, "ToolHive's default rate"
    assert settings.resource_attributes == {"team": "a b"}


@pytest.mark.parametrize("otel", [{"enabled": False}, {"tracing": {"enabled": False}, "endpoint": None}])
def test_no_env_when_tracing_is_off(otel: dict[str, Any]) -> None:
    assert telemetry_env(config(**otel), MCPTelemetryConfigReference(name="otel"), "fetch") == []


def test_the_config_replaces_same_named_override_variables_of_the_proxy_only() -> None:
    deployment = {
        "kind": "Deployment",
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "proxy",
                            "env": [
                                {"name": "OTEL_SERVICE_NAME", "value": "old"},
                                {"name": "A", "value": "1"},
                            ],
                        },
                        {"name": "sidecar", "env": [{"name": "OTEL_SERVICE_NAME", "value": "kept"}]},
                    ]
                }
            }
        },
    }
    env = [{"name": "OTEL_SERVICE_NAME", "value": "new"}]
    (out,) = with_telemetry_env([deployment], "proxy", env)
    proxy, sidecar = out["spec"]["template"]["spec"]["containers"]
    assert proxy["env"] == [{"name": "A", "value": "1"}, {"name": "OTEL_SERVICE_NAME", "value": "new"}]
    assert sidecar["env"] == [{"name": "OTEL_SERVICE_NAME", "value": "kept"}]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] == "old", (
        "input untouched"
    )
