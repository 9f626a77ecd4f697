"""OpenTelemetry tracing set-up shared by every process of the image (operator, proxy, gateway).

Settings come from OpenTelemetry's standard environment variables (:mod:`telemetry.settings`); a
:class:`Tracing` is a process's handle on its export (counters for /metrics, shutdown). Two span sources
share the bounded, never-blocking export of :mod:`telemetry.export`:

- :func:`start_tracing` (the operator's reconciles) installs the SDK's tracer provider as the global one
  with a parent-based ratio sampler;
- the data plane's hot path records light spans (:mod:`telemetry.records`, exported by
  :mod:`telemetry.record_export`), started by ``gateway.tracing.start``.

Without an endpoint nothing is installed or even imported: no provider, no thread, no exporter, and
:data:`Tracing.enabled` stays False for the data plane's one-boolean hot-path check.

This package imports no other package of the project.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from telemetry.settings import TracingSettings, settings_from_env

if TYPE_CHECKING:  # the SDK is imported only when tracing is on
    from opentelemetry.sdk.trace import TracerProvider
    from prometheus_client import CollectorRegistry

    from telemetry.export import BoundedSpanProcessor

__all__ = ["Tracing", "TracingSettings", "settings_from_env", "start_tracing"]


@dataclass
class Tracing:
    """The process's tracing: ``enabled`` is False (and the rest None) when it is off."""

    enabled: bool = False
    settings: TracingSettings | None = None
    provider: TracerProvider | None = None
    processor: BoundedSpanProcessor | None = None

    def register(self, registry: CollectorRegistry) -> None:
        """Export the span counters in ``registry`` (a process's /metrics), when tracing is on."""
        if self.processor is not None:
            from telemetry.export import TracingCollector  # noqa: PLC0415

            registry.register(TracingCollector(self.processor))

    def shutdown(self) -> None:
        """Send what is queued (bounded by the export timeout) and stop the export thread."""
        if self.provider is not None:
            self.provider.shutdown()  # flushes and stops its processor
        elif self.processor is not None:
            self.processor.force_flush(
                int(self.settings.export_timeout_seconds * 1000) if self.settings else 5000
            )
            self.processor.shutdown()


def start_tracing(
    default_service_name: str,
    env: Mapping[str, str] | None = None,
    *,
    settings: TracingSettings | None = None,
) -> Tracing:
    """Tracing as ``settings`` (else the environment) asks; raises ``ValueError`` for invalid settings."""
    if settings is None:
        settings = settings_from_env(os.environ if env is None else env, default_service_name)
    if settings is None:
        return Tracing()
    from opentelemetry import trace  # noqa: PLC0415 - the SDK only when tracing is on
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased  # noqa: PLC0415

    from telemetry.export import BoundedSpanProcessor, make_exporter  # noqa: PLC0415

    resource = Resource.create({**settings.resource_attributes, "service.name": settings.service_name})
    provider = TracerProvider(
        resource=resource, sampler=ParentBased(TraceIdRatioBased(settings.sampling_rate))
    )
    processor = BoundedSpanProcessor(
        make_exporter(settings), settings.max_queue_size, endpoint=settings.endpoint
    )
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    return Tracing(True, settings, provider, processor)
