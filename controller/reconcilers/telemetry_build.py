"""An MCPTelemetryConfig (or a VirtualMCPServer's ``config.telemetry`` in that form) as the environment of a
proxy or gateway container (pure).

The proxy reads OpenTelemetry's standard variables (``telemetry.settings``). Header values from Secrets
never enter a ConfigMap or the Deployment's spec: each is a ``secretKeyRef`` variable, and
``OTEL_EXPORTER_OTLP_HEADERS`` refers to it with Kubernetes' ``$(VAR)`` expansion.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from api.mcptelemetryconfig import MCPTelemetryConfigSpec, collector_url
from telemetry.settings import LEGACY_ATTRIBUTES_VARIABLE

__all__ = ["DEFAULT_SAMPLING_RATE", "telemetry_env", "with_telemetry_env"]

JSON = dict[str, Any]
DEFAULT_SAMPLING_RATE = "0.05"
"""ToolHive's default sampling rate when ``tracing.samplingRate`` is unset."""
_HEADER_VAR = "MCP_OPERATOR_OTLP_HEADER_{}"


def _pairs(values: dict[str, str]) -> str:
    return ",".join(f"{key}={urllib.parse.quote(value, safe='')}" for key, value in sorted(values.items()))


def telemetry_env(spec: MCPTelemetryConfigSpec, service_name: str | None, workload: str) -> list[JSON]:
    """The container's ``OTEL_*`` variables (``service.name``: ``service_name``, else ``workload``); empty
    when OpenTelemetry is off or neither signal is on (no exporter). A signal that is off is named ``none``
    (an endpoint turns both on by default)."""
    otel = spec.open_telemetry
    url = collector_url(otel) if otel is not None else None
    if otel is None or not otel.enabled or url is None:
        return []
    tracing = otel.tracing if otel.tracing is not None and otel.tracing.enabled else None
    metrics = otel.metrics is not None and otel.metrics.enabled
    if tracing is None and not metrics:
        return []
    env: list[JSON] = [
        {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": url},
        {"name": "OTEL_EXPORTER_OTLP_PROTOCOL", "value": "http/protobuf"},
        {"name": "OTEL_SERVICE_NAME", "value": service_name or workload},
    ]
    if tracing is not None:
        env.append(
            {"name": "OTEL_TRACES_SAMPLER_ARG", "value": tracing.sampling_rate or DEFAULT_SAMPLING_RATE}
        )
        if otel.use_legacy_attributes is not False:  # unset: on, ToolHive's default
            env.append({"name": LEGACY_ATTRIBUTES_VARIABLE, "value": "true"})
    else:
        env.append({"name": "OTEL_TRACES_EXPORTER", "value": "none"})
    if not metrics:
        env.append({"name": "OTEL_METRICS_EXPORTER", "value": "none"})
    if otel.resource_attributes:
        env.append({"name": "OTEL_RESOURCE_ATTRIBUTES", "value": _pairs(otel.resource_attributes)})
    headers = [_pairs(otel.headers)] if otel.headers else []
    for index, header in enumerate(otel.sensitive_headers or []):
        variable = _HEADER_VAR.format(index)
        ref_json = {"name": header.secret_key_ref.name, "key": header.secret_key_ref.key}
        env.append({"name": variable, "valueFrom": {"secretKeyRef": ref_json}})
        headers.append(f"{header.name}=$({variable})")
    if headers:
        env.append({"name": "OTEL_EXPORTER_OTLP_HEADERS", "value": ",".join(headers)})
    return env


def with_telemetry_env(children: list[JSON], container: str, env: list[JSON]) -> list[JSON]:
    """``children`` with ``env`` set on the Deployment container named ``container`` (the proxy); a
    variable of the same name from elsewhere (resource overrides) gives way to the telemetry config's."""
    if not env:
        return children
    names = {variable["name"] for variable in env}

    def with_env(deployment: JSON) -> JSON:
        pod = deployment["spec"]["template"]["spec"]
        containers = [
            {**c, "env": [*(e for e in c.get("env", []) if e["name"] not in names), *env]}
            if c.get("name") == container
            else c
            for c in pod["containers"]
        ]
        template = {**deployment["spec"]["template"], "spec": {**pod, "containers": containers}}
        return {**deployment, "spec": {**deployment["spec"], "template": template}}

    return [with_env(child) if child.get("kind") == "Deployment" else child for child in children]
