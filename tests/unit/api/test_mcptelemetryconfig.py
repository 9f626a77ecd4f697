"""MCPTelemetryConfig's rules (each problem names the field) and the proxy environment it becomes."""

from __future__ import annotations

from typing import Any

import pytest

from api.mcptelemetryconfig import MCPTelemetryConfig, telemetry_config_rules
from controller.reconcilers.telemetry_build import telemetry_env, with_telemetry_env
from telemetry.settings import metrics_settings_from_env, settings_from_env

BASE = {"enabled": True, "endpoint": "collector:4318", "insecure": True, "tracing": {"enabled": True}}


def config(**otel: Any) -> MCPTelemetryConfig:
    raw = {"metadata": {"name": "otel", "namespace": "t"}, "spec": {"openTelemetry": {**BASE, **otel}}}
    return MCPTelemetryConfig.model_validate(raw)


def problems(**otel: Any) -> list[tuple[str, str]]:
    return [(p.field, p.message) for p in telemetry_config_rules(config(**otel).spec)]


def test_toolhive_example_is_valid() -> None:
    assert problems() == []


@pytest.mark.parametrize(
    "otel",
    [
        {"metrics": {"enabled": True}},
        {"metrics": {"enabled": True}, "tracing": {"enabled": False}},
        {"endpoint": "http://otel-collector:4317", "insecure": False, "metrics": {"enabled": True}},
    ],
)
def test_toolhive_metrics_and_an_http_endpoint_without_insecure_are_accepted(otel: dict[str, Any]) -> None:
    """ToolHive accepts both (its upgrade-guide examples); an http:// scheme means plain text here."""
    assert problems(**otel) == []


@pytest.mark.parametrize(
    ("otel", "field", "says"),
    [
        (
            {"caBundleRef": {"configMapRef": {"name": "ca"}}},
            "spec.openTelemetry.caBundleRef",
            "not supported yet",
        ),
        ({"tracing": {"enabled": False}}, "spec.openTelemetry.endpoint", "no signal is enabled"),
        ({"endpoint": None}, "spec.openTelemetry.endpoint", "is required when tracing or metrics is enabled"),
        ({"endpoint": "ftp://c"}, "spec.openTelemetry.endpoint", "is not host:port or an http(s) URL"),
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
        config(resourceAttributes={"team": "a b"}, tracing={"enabled": True}).spec, None, "fetch"
    )
    plain = {e["name"]: e["value"] for e in env}
    settings = settings_from_env(plain, "unused")
    assert settings is not None
    assert settings.endpoint == "http://collector:4318"
    assert settings.service_name == "fetch", "the workload's name unless serviceName is given"
    assert settings.sampling_rate == 0.05, "ToolHive's default rate"
    assert settings.resource_attributes == {"team": "a b"}
    assert settings.legacy_attributes, "ToolHive's default: legacy attribute names too"


def test_legacy_attributes_off_leaves_them_out() -> None:
    env = telemetry_env(config(useLegacyAttributes=False).spec, None, "fetch")
    settings = settings_from_env({e["name"]: e["value"] for e in env}, "unused")
    assert settings is not None and not settings.legacy_attributes


@pytest.mark.parametrize(
    ("tracing", "metrics"), [(True, False), (False, True), (True, True)], ids=["tracing", "metrics", "both"]
)
def test_each_signal_is_on_in_the_proxy_exactly_when_its_switch_is(tracing: bool, metrics: bool) -> None:
    env = telemetry_env(
        config(tracing={"enabled": tracing}, metrics={"enabled": metrics}).spec, "fetch-svc", "fetch"
    )
    plain = {e["name"]: e["value"] for e in env}
    assert (settings_from_env(plain, "unused") is not None) is tracing
    exported = metrics_settings_from_env(plain, "unused")
    assert (exported is not None) is metrics
    if exported is not None:
        assert exported.metrics_url == "http://collector:4318/v1/metrics"
        assert exported.service_name == "fetch-svc"


@pytest.mark.parametrize(
    "otel",
    [
        {"enabled": False, "metrics": {"enabled": True}},
        {"tracing": {"enabled": False}, "endpoint": None},
        {"tracing": {"enabled": False}, "metrics": {"enabled": False}, "endpoint": None},
    ],
)
def test_no_env_when_opentelemetry_or_every_signal_is_off(otel: dict[str, Any]) -> None:
    assert telemetry_env(config(**otel).spec, None, "fetch") == []


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
