"""What a process's OTLP export (traces, metrics) is configured with, read from OpenTelemetry's standard
environment variables.

Every process of the image (operator, proxy, gateway) reads the same variables, so one set of env entries
on a pod configures it (the operator renders them from an MCPTelemetryConfig; its own come from its flags,
which are these variables' twins):

| variable | meaning |
|---|---|
| ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._{TRACES,METRICS}_ENDPOINT``) | the collector; unset = no export |
| ``OTEL_EXPORTER_OTLP_PROTOCOL`` (or ``..._{TRACES,METRICS}_PROTOCOL``) | ``http/protobuf`` or ``grpc`` |
| ``OTEL_EXPORTER_OTLP_HEADERS`` | ``key=value`` pairs, comma-separated, values URL-encoded |
| ``OTEL_EXPORTER_OTLP_INSECURE`` | ``true``: plain-text gRPC (HTTP takes the URL's scheme) |
| ``OTEL_TRACES_SAMPLER_ARG`` | the sampling ratio, 0 to 1 (default 1), parent-based |
| ``OTEL_TRACES_EXPORTER`` | ``none`` turns tracing off whatever else is set |
| ``OTEL_METRICS_EXPORTER`` | ``none`` turns the data plane's OTLP metrics off (default ``otlp``) |
| ``OTEL_METRIC_EXPORT_INTERVAL`` | milliseconds between two metrics exports (60000) |
| ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES`` | the resource (``key=value,...``) |
| ``OTEL_BSP_MAX_QUEUE_SIZE`` | spans held for export before new ones are dropped (2048) |
| ``OTEL_EXPORTER_OTLP_TIMEOUT`` | milliseconds one export may take, retries included (10000) |
| ``MCP_OPERATOR_OTEL_LEGACY_ATTRIBUTES`` | ``true``: spans also carry ToolHive's legacy attribute names |

Pure: :func:`settings_from_env` (traces) and :func:`metrics_settings_from_env` take the environment as a
mapping and raise ``ValueError`` naming the variable and the fix.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "LEGACY_ATTRIBUTES_VARIABLE",
    "PROTOCOLS",
    "MetricsSettings",
    "OtlpSettings",
    "TracingSettings",
    "metrics_settings_from_env",
    "parse_pairs",
    "settings_from_env",
]

PROTOCOLS = ("http/protobuf", "grpc")
LEGACY_ATTRIBUTES_VARIABLE = "MCP_OPERATOR_OTEL_LEGACY_ATTRIBUTES"
"""The variable that adds ToolHive's legacy attribute names to spans (``useLegacyAttributes``)."""
Protocol = Literal["http/protobuf", "grpc"]


@dataclass(frozen=True)
class OtlpSettings:
    """Where one signal goes and what it says about the process (shared by traces and metrics)."""

    endpoint: str
    service_name: str
    protocol: Protocol = "http/protobuf"
    headers: Mapping[str, str] = field(default_factory=dict)
    insecure: bool = False
    resource_attributes: Mapping[str, str] = field(default_factory=dict)
    export_timeout_seconds: float = 10.0

    def signal_url(self, path: str) -> str:
        """The OTLP/HTTP URL of a signal: the base endpoint plus ``path`` unless the endpoint names one."""
        parsed = urllib.parse.urlsplit(self.endpoint)
        if parsed.path in ("", "/"):
            return self.endpoint.rstrip("/") + path
        return self.endpoint

    @property
    def resource(self) -> dict[str, str]:
        """The OTLP resource's attributes: the configured ones and ``service.name``."""
        return {**self.resource_attributes, "service.name": self.service_name}


@dataclass(frozen=True)
class TracingSettings(OtlpSettings):
    """One process's tracing: where spans go, how many are kept, what they say about the process."""

    sampling_rate: float = 1.0
    max_queue_size: int = 2048
    legacy_attributes: bool = False
    """Whether spans also carry ToolHive's legacy (pre-semantic-convention) attribute names."""

    @property
    def traces_url(self) -> str:
        """The OTLP/HTTP traces URL: the base endpoint plus ``/v1/traces`` unless it names a path."""
        return self.signal_url("/v1/traces")


@dataclass(frozen=True)
class MetricsSettings(OtlpSettings):
    """One process's OTLP metrics export: where and how often."""

    interval_seconds: float = 60.0

    @property
    def metrics_url(self) -> str:
        """The OTLP/HTTP metrics URL: the base endpoint plus ``/v1/metrics`` unless it names a path."""
        return self.signal_url("/v1/metrics")


def parse_pairs(text: str, variable: str) -> dict[str, str]:
    """``k1=v1,k2=v2`` (values URL-encoded), as OTEL_EXPORTER_OTLP_HEADERS and OTEL_RESOURCE_ATTRIBUTES."""
    pairs: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(
                f"{variable}: {item.strip()!r} is not key=value; write {variable}=key1=value1,key2=value2"
            )
        pairs[key.strip()] = urllib.parse.unquote(value.strip())
    return pairs


def _first(env: Mapping[str, str], *names: str) -> tuple[str, str | None]:
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return name, value
    return names[0], None


def _number(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}: {raw!r} is not a number; give a value from {low:g} to {high:g}") from None
    if not low <= value <= high:
        raise ValueError(f"{name}: {raw} is out of range; give a value from {low:g} to {high:g}")
    return value


def _switch(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "false").strip().lower()
    if value not in ("true", "false"):
        raise ValueError(f"{name}: {value!r} is not true or false")
    return value == "true"


def _otlp_fields(env: Mapping[str, str], signal: str, default_service_name: str) -> dict[str, Any] | None:
    """The fields of :class:`OtlpSettings` for ``signal`` (``TRACES``, ``METRICS``), None without an
    endpoint; the signal's own variables win over the shared ones."""
    endpoint_var, endpoint = _first(
        env, f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if endpoint is None:
        return None
    parsed = urllib.parse.urlsplit(endpoint)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(
            f"{endpoint_var}: {endpoint!r} is not an http(s) URL; e.g. http://otel-collector:4318"
        )
    protocol_var, protocol = _first(
        env, f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"
    )
    protocol = protocol or "http/protobuf"
    if protocol not in PROTOCOLS:
        raise ValueError(f"{protocol_var}: {protocol!r} is not supported; use one of {', '.join(PROTOCOLS)}")
    insecure = _switch(env, "OTEL_EXPORTER_OTLP_INSECURE")
    attributes = parse_pairs(env.get("OTEL_RESOURCE_ATTRIBUTES", ""), "OTEL_RESOURCE_ATTRIBUTES")
    return {
        "endpoint": endpoint,
        "service_name": env.get("OTEL_SERVICE_NAME", "").strip()
        or attributes.get("service.name", default_service_name),
        "protocol": "grpc" if protocol == "grpc" else "http/protobuf",
        "headers": parse_pairs(env.get("OTEL_EXPORTER_OTLP_HEADERS", ""), "OTEL_EXPORTER_OTLP_HEADERS"),
        "insecure": insecure,
        "resource_attributes": attributes,
        "export_timeout_seconds": _number(env, "OTEL_EXPORTER_OTLP_TIMEOUT", 10_000, 1, 600_000) / 1000,
    }


def settings_from_env(env: Mapping[str, str], default_service_name: str) -> TracingSettings | None:
    """The tracing settings the environment asks for, None when tracing is off (no endpoint, or the traces
    exporter is ``none``)."""
    if env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return None
    fields = _otlp_fields(env, "TRACES", default_service_name)
    if fields is None:
        return None
    return TracingSettings(
        **fields,
        sampling_rate=_number(env, "OTEL_TRACES_SAMPLER_ARG", 1.0, 0.0, 1.0),
        max_queue_size=int(_number(env, "OTEL_BSP_MAX_QUEUE_SIZE", 2048, 1, 1_000_000)),
        legacy_attributes=_switch(env, LEGACY_ATTRIBUTES_VARIABLE),
    )


def metrics_settings_from_env(env: Mapping[str, str], default_service_name: str) -> MetricsSettings | None:
    """The OTLP metrics export the environment asks for, None when it is off (no endpoint, or the metrics
    exporter is ``none``); like OpenTelemetry's SDKs, an endpoint alone turns it on."""
    exporter = env.get("OTEL_METRICS_EXPORTER", "").strip().lower()
    if exporter == "none":
        return None
    if exporter not in ("", "otlp"):
        raise ValueError(f"OTEL_METRICS_EXPORTER: {exporter!r} is not supported; use otlp or none")
    fields = _otlp_fields(env, "METRICS", default_service_name)
    if fields is None:
        return None
    interval = _number(env, "OTEL_METRIC_EXPORT_INTERVAL", 60_000, 100, 86_400_000) / 1000
    return MetricsSettings(**fields, interval_seconds=interval)
