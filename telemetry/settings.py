"""What a process's tracing is configured with, read from OpenTelemetry's standard environment variables.

Every process of the image (operator, proxy, gateway) reads the same variables, so one set of env entries
on a pod configures it (the operator renders them from an MCPTelemetryConfig; its own come from its flags,
which are these variables' twins):

| variable | meaning |
|---|---|
| ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) | the collector; unset = tracing off |
| ``OTEL_EXPORTER_OTLP_PROTOCOL`` (or ``..._TRACES_PROTOCOL``) | ``http/protobuf`` (default) or ``grpc`` |
| ``OTEL_EXPORTER_OTLP_HEADERS`` | ``key=value`` pairs, comma-separated, values URL-encoded |
| ``OTEL_EXPORTER_OTLP_INSECURE`` | ``true``: plain-text gRPC (HTTP takes the URL's scheme) |
| ``OTEL_TRACES_SAMPLER_ARG`` | the sampling ratio, 0 to 1 (default 1), parent-based |
| ``OTEL_TRACES_EXPORTER`` | ``none`` turns tracing off whatever else is set |
| ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES`` | the resource (``key=value,...``) |
| ``OTEL_BSP_MAX_QUEUE_SIZE`` | spans held for export before new ones are dropped (2048) |
| ``OTEL_EXPORTER_OTLP_TIMEOUT`` | milliseconds one export may take, retries included (10000) |

Pure: :func:`settings_from_env` takes the environment as a mapping and raises ``ValueError`` naming the
variable and the fix.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["PROTOCOLS", "TracingSettings", "parse_pairs", "settings_from_env"]

PROTOCOLS = ("http/protobuf", "grpc")
Protocol = Literal["http/protobuf", "grpc"]


@dataclass(frozen=True)
class TracingSettings:
    """One process's tracing: where spans go, how many are kept, what they say about the process."""

    endpoint: str
    service_name: str
    protocol: Protocol = "http/protobuf"
    headers: Mapping[str, str] = field(default_factory=dict)
    insecure: bool = False
    sampling_rate: float = 1.0
    resource_attributes: Mapping[str, str] = field(default_factory=dict)
    max_queue_size: int = 2048
    export_timeout_seconds: float = 10.0

    @property
    def traces_url(self) -> str:
        """The OTLP/HTTP traces URL: the base endpoint plus ``/v1/traces`` unless it names a path."""
        parsed = urllib.parse.urlsplit(self.endpoint)
        if parsed.path in ("", "/"):
            return self.endpoint.rstrip("/") + "/v1/traces"
        return self.endpoint


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


def settings_from_env(env: Mapping[str, str], default_service_name: str) -> TracingSettings | None:
    """The tracing settings the environment asks for, None when tracing is off (no endpoint, or the traces
    exporter is ``none``)."""
    if env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return None
    endpoint_var, endpoint = _first(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
    if endpoint is None:
        return None
    parsed = urllib.parse.urlsplit(endpoint)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(
            f"{endpoint_var}: {endpoint!r} is not an http(s) URL; e.g. http://otel-collector:4318"
        )
    protocol_var, protocol = _first(env, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
    protocol = protocol or "http/protobuf"
    if protocol not in PROTOCOLS:
        raise ValueError(f"{protocol_var}: {protocol!r} is not supported; use one of {', '.join(PROTOCOLS)}")
    insecure = env.get("OTEL_EXPORTER_OTLP_INSECURE", "false").strip().lower()
    if insecure not in ("true", "false"):
        raise ValueError(f"OTEL_EXPORTER_OTLP_INSECURE: {insecure!r} is not true or false")
    attributes = parse_pairs(env.get("OTEL_RESOURCE_ATTRIBUTES", ""), "OTEL_RESOURCE_ATTRIBUTES")
    return TracingSettings(
        endpoint=endpoint,
        service_name=env.get("OTEL_SERVICE_NAME", "").strip()
        or attributes.get("service.name", default_service_name),
        protocol="grpc" if protocol == "grpc" else "http/protobuf",
        headers=parse_pairs(env.get("OTEL_EXPORTER_OTLP_HEADERS", ""), "OTEL_EXPORTER_OTLP_HEADERS"),
        insecure=insecure == "true",
        sampling_rate=_number(env, "OTEL_TRACES_SAMPLER_ARG", 1.0, 0.0, 1.0),
        resource_attributes=attributes,
        max_queue_size=int(_number(env, "OTEL_BSP_MAX_QUEUE_SIZE", 2048, 1, 1_000_000)),
        export_timeout_seconds=_number(env, "OTEL_EXPORTER_OTLP_TIMEOUT", 10_000, 1, 600_000) / 1000,
    )
