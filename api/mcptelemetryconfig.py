"""MCPTelemetryConfig: OpenTelemetry settings shared by the proxy workloads (``telemetryConfigRef``).

Field names are ToolHive's (``toolhive.stacklok.dev`` MCPTelemetryConfig), so its manifests port by
changing the API group. What the operator does with them: docs/operations.md, "Tracing"; fields whose
behaviour is not implemented are refused by :func:`api.rules.telemetry_config_rules`, never ignored.
"""

from __future__ import annotations

import urllib.parse
from typing import ClassVar, Literal

from pydantic import Field

from api.base import CRDModel
from api.common import LocalObjectReference, SecretKeyRef
from api.mcpoidcconfig import ReferencedConfigStatus
from api.problems import Problem
from api.resource import CustomResource

__all__ = [
    "InlineTelemetry",
    "MCPTelemetryConfig",
    "MCPTelemetryConfigReference",
    "MCPTelemetryConfigSpec",
    "OpenTelemetrySettings",
    "SensitiveHeader",
    "collector_url",
    "inline_telemetry_rules",
    "shared_telemetry",
    "telemetry_config_rules",
]


class SensitiveHeader(CRDModel):
    """An exporter header whose value is read from a Secret (passed to the pod as an env reference)."""

    name: str = Field(min_length=1, pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
    """Header name, e.g. ``Authorization`` or ``X-API-Key``."""
    secret_key_ref: SecretKeyRef
    """The Secret key holding the header's value."""


class Switch(CRDModel):
    """A signal's on/off switch."""

    enabled: bool = False
    """Whether the signal is exported."""


class TracingSwitch(Switch):
    """Tracing: on/off and the sampling ratio."""

    sampling_rate: str | None = Field(default=None, pattern=r"^(0(\.[0-9]+)?|1(\.0+)?)$")
    """Ratio of traces kept that start at the proxy (``"0.05"`` = 5%); a client's sampled flag is
    followed. Unset: ``"0.05"`` (ToolHive's default)."""


class CABundleSource(CRDModel):
    """A CA bundle for the collector's TLS (ToolHive field; refused: not supported yet)."""

    config_map_ref: LocalObjectReference | None = None
    """The ConfigMap holding the bundle."""


class OpenTelemetrySettings(CRDModel):
    """The OTLP exporter of the proxy and gateway pods."""

    enabled: bool = False
    """Whether OpenTelemetry is on."""
    endpoint: str | None = Field(default=None, min_length=1)
    """The OTLP/HTTP collector, e.g. ``otel-collector.monitoring:4318`` (no scheme: ``http://`` when
    ``insecure``, else ``https://``) or a full URL, whose scheme decides: ``http://...`` is plain text
    whatever ``insecure`` says, ``https://...`` is TLS."""
    insecure: bool = False
    """Plain HTTP instead of HTTPS to a collector given without a scheme."""
    headers: dict[str, str] | None = None
    """Headers sent with each export; credentials belong in ``sensitiveHeaders``."""
    sensitive_headers: list[SensitiveHeader] | None = Field(
        default=None,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    """Headers whose values come from Secrets (never written into a ConfigMap)."""
    resource_attributes: dict[str, str] | None = None
    """OpenTelemetry resource attributes of every span and metric, e.g. ``deployment.environment``."""
    tracing: TracingSwitch | None = None
    """Tracing switch and sampling."""
    metrics: Switch | None = None
    """OTLP metrics: the proxy's or gateway's Prometheus families, exported every minute under their own
    names and ToolHive's instrument names (docs/operations.md, "OpenTelemetry metrics")."""
    use_legacy_attributes: bool | None = None
    """Spans also carry ToolHive's legacy attribute names (``mcp.method``, ``mcp.tool.name``, ...) next to
    the semantic-convention ones; unset: ``true``, ToolHive's default."""
    ca_bundle_ref: CABundleSource | None = None
    """A CA bundle for the collector (not supported yet: refused)."""


class InlineTelemetry(CRDModel):
    """A VirtualMCPServer's own OpenTelemetry settings (``spec.config.telemetry``): ToolHive's flat form, the
    one its standalone gateway reads. The operator applies them as it applies a referenced
    MCPTelemetryConfig (:func:`shared_telemetry`); ``telemetryConfigRef`` is the form to share settings."""

    endpoint: str | None = Field(default=None, min_length=1)
    """The OTLP/HTTP collector, ``host:port`` (``http://`` with ``insecure``, else ``https://``) or a URL."""
    service_name: str | None = Field(default=None, min_length=1)
    """``service.name`` of the gateway's spans and metrics; unset: the VirtualMCPServer's name."""
    service_version: str | None = Field(default=None, min_length=1)
    """``service.version`` of the gateway's spans and metrics."""
    tracing_enabled: bool = False
    """Whether spans are exported."""
    metrics_enabled: bool = False
    """Whether OTLP metrics are exported."""
    sampling_rate: str | None = Field(default=None, pattern=r"^(0(\.[0-9]+)?|1(\.0+)?)$")
    """Ratio of traces kept that start at the gateway (``"0.05"`` = 5%, the default)."""
    headers: dict[str, str] | None = None
    """Headers sent with each export (visible in the object: credentials belong in an MCPTelemetryConfig's
    ``sensitiveHeaders``)."""
    insecure: bool = False
    """Plain HTTP to a collector given without a scheme."""
    enable_prometheus_metrics_path: bool = False
    """ToolHive's switch for ``/metrics``; the gateway always serves it, so either value is accepted."""
    prometheus_port: int | None = Field(default=None, json_schema_extra={"format": "int32"})
    """A separate port for ``/metrics`` (not supported yet: refused unless 0)."""
    metrics_on_transport_port: bool | None = None
    """``/metrics`` also on the MCP port: it is served there, so ``false`` is refused."""
    environment_variables: list[str] | None = None
    """Environment variables copied into span attributes (not supported yet: refused)."""
    custom_attributes: dict[str, str] | None = None
    """Resource attributes of every span and metric, e.g. ``deployment.environment``."""
    use_legacy_attributes: bool | None = None
    """Spans also carry ToolHive's legacy attribute names; unset: ``true``, ToolHive's default."""
    ca_cert_path: str | None = None
    """A CA file for the collector's TLS (not supported yet: refused)."""


class MCPTelemetryConfigSpec(CRDModel):
    """OpenTelemetry and Prometheus settings shared by several workloads."""

    open_telemetry: OpenTelemetrySettings | None = None
    """The OTLP exporter."""
    prometheus: Switch | None = None
    """Prometheus ``/metrics`` (every proxy and gateway always serves it; ``enabled: false`` is refused)."""


class MCPTelemetryConfigReference(CRDModel):
    """A workload's reference to an MCPTelemetryConfig, with its own service name."""

    name: str = Field(min_length=1, max_length=253)
    """Name of the MCPTelemetryConfig in the workload's namespace."""
    service_name: str | None = Field(default=None, min_length=1)
    """``service.name`` of this workload's spans and metrics; unset: the workload's name."""


class MCPTelemetryConfig(CustomResource):
    """Shared OpenTelemetry settings for proxies and gateways."""

    KIND: ClassVar[str] = "MCPTelemetryConfig"

    kind: Literal["MCPTelemetryConfig"] = "MCPTelemetryConfig"
    """``MCPTelemetryConfig``."""
    spec: MCPTelemetryConfigSpec = Field(default_factory=MCPTelemetryConfigSpec)
    """Desired state."""
    status: ReferencedConfigStatus = Field(default_factory=ReferencedConfigStatus)
    """Observed state, written by the operator."""


def collector_url(settings: OpenTelemetrySettings) -> str | None:
    """The collector's URL: ``endpoint`` as given when it has a scheme, else ``http://`` (insecure) or
    ``https://`` in front of it, as ToolHive reads it."""
    if not settings.endpoint:
        return None
    if "://" in settings.endpoint:
        return settings.endpoint
    return ("http://" if settings.insecure else "https://") + settings.endpoint


def shared_telemetry(inline: InlineTelemetry) -> tuple[MCPTelemetryConfigSpec, str | None]:
    """``spec.config.telemetry`` as the MCPTelemetryConfig spec it means, with its service name."""
    attributes = dict(inline.custom_attributes or {})
    if inline.service_version:
        attributes["service.version"] = inline.service_version
    otel = OpenTelemetrySettings(
        enabled=True,
        endpoint=inline.endpoint,
        insecure=inline.insecure,
        headers=inline.headers,
        resource_attributes=attributes or None,
        tracing=TracingSwitch(enabled=inline.tracing_enabled, sampling_rate=inline.sampling_rate),
        metrics=Switch(enabled=inline.metrics_enabled),
        use_legacy_attributes=inline.use_legacy_attributes,
    )
    return MCPTelemetryConfigSpec(open_telemetry=otel), inline.service_name


def inline_telemetry_rules(inline: InlineTelemetry, base: str, *, referenced: bool) -> list[Problem]:
    """The problems of ``spec.config.telemetry`` (at ``base``), named by its own fields; ``referenced``: the
    workload also sets ``telemetryConfigRef``."""
    problems: list[Problem] = []
    if referenced:
        problems.append(Problem(base, "is set together with spec.telemetryConfigRef; keep one of the two"))
    if inline.prometheus_port:
        problems.append(
            _unsupported(f"{base}.prometheusPort", "remove it (/metrics is on the gateway's port)")
        )
    if inline.metrics_on_transport_port is False:
        message = "false is not supported: the gateway serves /metrics on its MCP port; remove it"
        problems.append(Problem(f"{base}.metricsOnTransportPort", message))
    if inline.environment_variables:
        problems.append(_unsupported(f"{base}.environmentVariables", "remove it, or use customAttributes"))
    if inline.ca_cert_path:
        fix = "remove it (the collector needs a publicly trusted certificate)"
        problems.append(_unsupported(f"{base}.caCertPath", fix))
    signals = inline.tracing_enabled or inline.metrics_enabled
    if inline.endpoint and not signals:
        fix = "is set but no signal is enabled; set tracingEnabled or metricsEnabled: true"
        problems.append(Problem(f"{base}.endpoint", fix))
    if signals and not inline.endpoint:
        fix = "is required when tracingEnabled or metricsEnabled is true; e.g. otel-collector:4318"
        problems.append(Problem(f"{base}.endpoint", fix))
    spec, _ = shared_telemetry(inline)
    url = collector_url(spec.open_telemetry) if spec.open_telemetry is not None else None
    if url is not None and _not_a_collector(url):
        problems.append(
            Problem(f"{base}.endpoint", f"{inline.endpoint!r} is not host:port or an http(s) URL")
        )
    return problems


def _not_a_collector(url: str) -> bool:
    parsed = urllib.parse.urlsplit(url)
    return parsed.scheme not in ("http", "https") or not parsed.hostname


def _unsupported(field: str, fix: str) -> Problem:
    return Problem(field, f"is not supported yet; {fix}")


def telemetry_config_rules(spec: MCPTelemetryConfigSpec) -> list[Problem]:
    """What the schema cannot say: an endpoint with no signal, a signal with no endpoint, a header given
    twice, a URL that is not one, and the ToolHive fields whose behaviour is not implemented. An
    ``http://`` endpoint with ``insecure: false`` is accepted, as ToolHive accepts it: the scheme says
    plain text."""
    problems: list[Problem] = []
    if spec.prometheus is not None and not spec.prometheus.enabled:
        fix = "every proxy and gateway serves /metrics; remove spec.prometheus or set enabled: true"
        problems.append(_unsupported("spec.prometheus.enabled", fix))
    otel = spec.open_telemetry
    if otel is None:
        return problems
    base = "spec.openTelemetry"
    signals = (otel.tracing is not None and otel.tracing.enabled) or (
        otel.metrics is not None and otel.metrics.enabled
    )
    if otel.ca_bundle_ref is not None:
        problems.append(
            _unsupported(
                f"{base}.caBundleRef", "remove it (the collector needs a publicly trusted certificate)"
            )
        )
    if otel.endpoint and not signals:
        problems.append(
            Problem(
                f"{base}.endpoint",
                "is set but no signal is enabled; set tracing.enabled or metrics.enabled: true",
            )
        )
    if otel.enabled and signals and not otel.endpoint:
        problems.append(
            Problem(
                f"{base}.endpoint",
                "is required when tracing or metrics is enabled; e.g. otel-collector:4318",
            )
        )
    url = collector_url(otel)
    if url is not None and _not_a_collector(url):
        problems.append(Problem(f"{base}.endpoint", f"{otel.endpoint!r} is not host:port or an http(s) URL"))
    plain = {name.lower() for name in otel.headers or {}}
    for index, header in enumerate(otel.sensitive_headers or []):
        if header.name.lower() in plain:
            problems.append(
                Problem(
                    f"{base}.sensitiveHeaders[{index}].name",
                    f"header {header.name!r} is also in headers; keep it in one of the two",
                )
            )
    return problems
