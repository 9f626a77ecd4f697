"""Prometheus metrics and the per-call audit line of the proxy and the virtual gateway.

The metric names and the audit line's keys are listed in docs/proxy.md (end) and docs/vmcp.md; request
metrics come from :mod:`gateway.request_policy` in both, so one dashboard query covers both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from api.proxy_config import AuditConfig

__all__ = ["AUDIT_LOGGER", "Auditor", "ProxyMetrics", "RequestMetrics"]

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
        if self.config.include_arguments:
            record["arguments"] = arguments or {}
        self.logger.info("tools/call", **record)
