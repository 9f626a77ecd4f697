"""A workload's ``telemetryConfigRef`` resolved against the cache: the MCPTelemetryConfig (parsed and
checked by its rules), the Secrets its headers name, and the OTEL_* environment it gives the workload's
container. Shared by the proxy kinds and VirtualMCPServer."""

from __future__ import annotations

from dataclasses import dataclass, field

from api.mcptelemetryconfig import (
    InlineTelemetry,
    MCPTelemetryConfig,
    MCPTelemetryConfigReference,
    shared_telemetry,
)
from controller.core import Cache
from controller.reconcilers.children import JSON, spec_hash
from controller.reconcilers.kinds import MCPTELEMETRYCONFIG
from controller.reconcilers.refs import Missing, missing_config_secrets, parse_ref, telemetry_secret_refs
from controller.reconcilers.telemetry_build import telemetry_env

__all__ = ["TelemetryRef", "inline_telemetry", "resolve_telemetry"]


@dataclass
class TelemetryRef:
    """The resolved config (None: no reference, or it is missing or invalid) and the env it gives."""

    config: MCPTelemetryConfig | None = None
    env: list[JSON] = field(default_factory=list)

    @property
    def hash(self) -> str | None:
        """``status.telemetryConfigHash``."""
        return spec_hash(self.config.spec) if self.config is not None else None


def resolve_telemetry(
    cache: Cache,
    namespace: str,
    ref: MCPTelemetryConfigReference | None,
    workload: str,
    missing: list[Missing],
) -> TelemetryRef:
    """Look ``ref`` up; what is not usable goes into ``missing`` the way every reference is reported."""
    if ref is None:
        return TelemetryRef()
    raw = cache.get(MCPTELEMETRYCONFIG, namespace, ref.name)
    if raw is None:
        message = (
            f"MCPTelemetryConfig '{ref.name}' does not exist in namespace '{namespace}'; create it or remove "
            "spec.telemetryConfigRef"
        )
        missing.append(Missing("spec.telemetryConfigRef.name", "TelemetryConfigNotFound", message))
        return TelemetryRef()
    config = parse_ref(MCPTelemetryConfig, raw, "spec.telemetryConfigRef.name", missing)
    if config is None:
        return TelemetryRef()
    secret_refs = telemetry_secret_refs(config.spec.model_dump(by_alias=True, exclude_none=True))
    missing += missing_config_secrets(cache, namespace, f"MCPTelemetryConfig '{ref.name}'", secret_refs)
    return TelemetryRef(config, telemetry_env(config.spec, ref.service_name, workload))


def inline_telemetry(inline: InlineTelemetry, workload: str) -> TelemetryRef:
    """A VirtualMCPServer's ``config.telemetry``: the env its MCPTelemetryConfig form gives (no config to
    hash: a change of the settings changes the pod template, which rolls the gateway)."""
    spec, service_name = shared_telemetry(inline)
    return TelemetryRef(None, telemetry_env(spec, service_name, workload))
