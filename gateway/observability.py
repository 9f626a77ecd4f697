"""Prometheus metrics (and their OTLP export) and the per-call audit line of the proxy and the gateway.

The metric names and the audit line's keys are listed in docs/proxy.md (end) and docs/vmcp.md; request
metrics come from :mod:`gateway.request_policy` in both, so one dashboard query covers both. The OTLP
metrics export reads the same collectors at export time (:mod:`telemetry.metrics`): nothing more is done
per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any

import structlog
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from starlette.applications import Starlette

from api.proxy_config import AuditConfig
from telemetry.settings import metrics_settings_from_env

if TYPE_CHECKING:  # protobuf and the exporter only when the export is on
    from telemetry.metrics import MetricsExport

__all__ = ["AUDIT_LOGGER", "Auditor", "ProxyMetrics", "RequestMetrics", "start_metrics_export"]

AUDIT_LOGGER = "mcp_operator.audit"
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class RequestMetrics:
    """The per-request collectors of the proxy and the gateway (see the module docstring)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "mcp_proxy_requests",
            "MCP requests handled by the proxy or gateway, by method, tool and outcome.",
            ["method", "tool", "outcome"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "mcp_proxy_request_duration_seconds",
            "Time from receiving a front request to answering it.",
            ["method"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self._children: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}
        """Per label set, the two children (``labels()`` validates and locks on every call)."""
        self.fast_path_enabled = Gauge(
            "mcp_proxy_fast_path_enabled",
            "1 when the fast path serves /mcp requests; 0 when it is off (configuration, or the installed "
            "mcp SDK lacks a private name it needs).",
            registry=self.registry,
        )

    def observe(self, method: str, tool: str, outcome: str, seconds: float) -> None:
        key = (method, tool, outcome)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (self.requests.labels(*key), self.duration.labels(method))
        children[0].inc()
        children[1].observe(seconds)


class ProxyMetrics(RequestMetrics):
    """The proxy's Prometheus collectors, in their own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry)
        self.backend_restarts = Counter(
            "mcp_proxy_backend_restarts",
            "Backend reconnects (process restarts, re-attaches).",
            registry=self.registry,
        )
        self.backend_up = Gauge(
            "mcp_proxy_backend_up", "1 while the backend session is up.", registry=self.registry
        )
        self.active_sessions = Gauge(
            "mcp_proxy_active_sessions", "Open session-era front sessions.", registry=self.registry
        )

    def track_sessions(self, count: Callable[[], int]) -> None:
        self.active_sessions.set_function(count)


def start_metrics_export(
    server: str,
    transport: str,
    app: Starlette,
    registry: CollectorRegistry,
    env: Mapping[str, str] | None = None,
) -> MetricsExport | None:
    """The OTLP metrics export of ``registry`` (and the process-wide default one) when the environment
    names a collector (:mod:`telemetry.settings`), its counts registered in ``registry``; None when off.
    ``server`` and ``transport`` are ToolHive's attributes of the workload. While ``app``'s lifespan runs,
    the registries are collected on its event loop. Raises ``ValueError`` naming the variable that is
    wrong."""
    settings = metrics_settings_from_env(os.environ if env is None else env, server)
    if settings is None:
        return None
    from telemetry.metrics import MetricsExport, MetricsExportCollector, Workload  # noqa: PLC0415

    export = MetricsExport(settings, [registry, REGISTRY], Workload(server, transport))
    registry.register(MetricsExportCollector(export))
    serving = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(started: Starlette) -> AsyncIterator[Any]:
        export.loop = asyncio.get_running_loop()
        try:
            async with serving(started) as state:
                yield state
        finally:
            export.loop = None

    app.router.lifespan_context = lifespan
    return export.start()


class Auditor:
    """Writes the audit line of each tool call, when enabled."""

    def __init__(self, config: AuditConfig | None = None) -> None:
        self.config = config or AuditConfig()
        self.level_gate = logging.getLogger(AUDIT_LOGGER)
        self.logger = structlog.get_logger(AUDIT_LOGGER)

    def tool_call(
        self,
        caller: str,
        tool: str,
        backend_tool: str | None,
        outcome: str,
        seconds: float,
        *,
        arguments: dict[str, Any] | None,
        error: str | None = None,
    ) -> None:
        if not self.config.enabled or not self.level_gate.isEnabledFor(logging.INFO):
            return  # nothing would be written: do not build the line
        record: dict[str, Any] = {
            "caller": caller,
            "tool": tool,
            "backendTool": backend_tool,
            "durationMs": round(seconds * 1000, 3),
            "outcome": outcome,
        }
        if error is not None:
            record["error"] = error
        if self.config.component:
            record["component"] = self.config.component
        if self.config.include_arguments:
            record["arguments"] = bounded = self._bounded(arguments or {})
            if isinstance(bounded, str):
                record["argumentsTruncated"] = True
        self.logger.info("tools/call", **record)

    def _bounded(self, arguments: dict[str, Any]) -> dict[str, Any] | str:
        """The arguments, or with ``maxDataSize`` exceeded their JSON cut to that many bytes (a string)."""
        limit = self.config.max_data_size
        if limit is None:
            return arguments
        encoded = json.dumps(arguments, separators=(",", ":"), default=str).encode()
        if len(encoded) <= limit:
            return arguments
        return encoded[:limit].decode(errors="ignore")
