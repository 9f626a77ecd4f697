"""Tracing settings from OpenTelemetry's environment variables: what turns tracing on, and bad values
refused with the variable named."""

from __future__ import annotations

import pytest

from telemetry import start_tracing
from telemetry.settings import TracingSettings, settings_from_env

ENDPOINT = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}


def test_no_endpoint_or_exporter_none_means_tracing_off() -> None:
    assert settings_from_env({}, "proxy") is None
    assert settings_from_env({**ENDPOINT, "OTEL_TRACES_EXPORTER": "none"}, "proxy") is None


def test_off_installs_nothing() -> None:
    tracing = start_tracing("proxy", env={})
    assert (tracing.enabled, tracing.provider, tracing.processor) == (False, None, None)


def test_every_variable_is_read() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://collector:4317",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=s%3Dcret, tenant=a",
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_TRACES_SAMPLER_ARG": "0.25",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,service.name=from-attrs",
        "OTEL_BSP_MAX_QUEUE_SIZE": "100",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "2500",
    }
    assert settings_from_env(env, "proxy") == TracingSettings(
        endpoint="https://collector:4317",
        service_name="from-attrs",
        protocol="grpc",
        headers={"x-api-key": "s=cret", "tenant": "a"},
        insecure=True,
        sampling_rate=0.25,
        resource_attributes={"deployment.environment": "prod", "service.name": "from-attrs"},
        max_queue_size=100,
        export_timeout_seconds=2.5,
    )
    named = settings_from_env({**ENDPOINT, "OTEL_SERVICE_NAME": "fetch"}, "proxy")
    assert named is not None and named.service_name == "fetch"


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [
        ("http://c:4318", "http://c:4318/v1/traces"),
        ("http://c:4318/", "http://c:4318/v1/traces"),
        ("http://c:4318/custom/traces", "http://c:4318/custom/traces"),
    ],
)
def test_http_traces_url_appends_the_signal_path_to_a_base_endpoint(endpoint: str, url: str) -> None:
    assert TracingSettings(endpoint=endpoint, service_name="x").traces_url == url


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT"),
        ({**ENDPOINT, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "OTEL_EXPORTER_OTLP_PROTOCOL"),
        ({**ENDPOINT, "OTEL_TRACES_SAMPLER_ARG": "1.5"}, "OTEL_TRACES_SAMPLER_ARG"),
        ({**ENDPOINT, "OTEL_TRACES_SAMPLER_ARG": "half"}, "OTEL_TRACES_SAMPLER_ARG"),
        ({**ENDPOINT, "OTEL_EXPORTER_OTLP_HEADERS": "novalue"}, "OTEL_EXPORTER_OTLP_HEADERS"),
        ({**ENDPOINT, "OTEL_EXPORTER_OTLP_INSECURE": "yes"}, "OTEL_EXPORTER_OTLP_INSECURE"),
        ({**ENDPOINT, "OTEL_BSP_MAX_QUEUE_SIZE": "0"}, "OTEL_BSP_MAX_QUEUE_SIZE"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ValueError, match=f"^{named}: "):
        settings_from_env(env, "proxy")
