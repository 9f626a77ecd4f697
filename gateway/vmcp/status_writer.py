"""Backend health written to the VirtualMCPServer's status, from the gateway pod itself.

Who owns which ``status.discoveredBackends`` key (server-side apply, field manager
``mcp-operator-vmcp``): docs/vmcp.md, "Who owns which status field". The writer sends a request only when
some backend's health or message changed, never for the timestamp alone, so a steady gateway makes no API
writes. Enabled by ``VMCP_NAME`` and ``VMCP_NAMESPACE`` (set by the operator's Deployment).
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import structlog

from kube.service_account import CA_FILE, TOKEN_FILE, in_cluster_server, service_account
from kube.transport import KubeTransport, Request, Transport, TransportError

__all__ = ["FIELD_MANAGER", "StatusTarget", "StatusWriter", "health_items"]

FIELD_MANAGER = "mcp-operator-vmcp"
HEALTH_VALUES = ("ready", "unavailable", "degraded", "unknown", "unauthenticated")
log = structlog.get_logger("mcp-operator.vmcp.status")


@dataclass(frozen=True)
class StatusTarget:
    """Which VirtualMCPServer to report on, and how to reach the API server."""

    name: str
    namespace: str
    api_server: str
    token_file: Path
    ca_file: Path | None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> StatusTarget | None:
        """The in-cluster target, or None when ``VMCP_NAME`` / ``VMCP_NAMESPACE`` are not both set."""
        env = dict(os.environ if environ is None else environ)
        name, namespace = env.get("VMCP_NAME"), env.get("VMCP_NAMESPACE")
        if not name or not namespace:
            return None
        api = env.get("VMCP_KUBERNETES_API") or in_cluster_server(env, otherwise="set VMCP_KUBERNETES_API")
        ca = Path(env.get("VMCP_KUBERNETES_CA", str(CA_FILE)))
        token = Path(env.get("VMCP_KUBERNETES_TOKEN_FILE", str(TOKEN_FILE)))
        return cls(name, namespace, api.rstrip("/"), token, ca if ca.exists() else None)

    @property
    def status_path(self) -> str:
        base = f"/apis/mcp-operator.dev/v1beta1/namespaces/{self.namespace}"
        return f"{base}/virtualmcpservers/{self.name}/status"


def health_items(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The gateway-owned keys of ``discoveredBackends`` items from the gateway's ``/status`` entries."""
    items = []
    for entry in sorted(entries, key=lambda e: str(e.get("name"))):
        health = str(entry.get("health") or "unknown")
        item: dict[str, Any] = {
            "name": entry["name"],
            "status": health if health in HEALTH_VALUES else "unknown",
        }
        if entry.get("lastError"):
            item["message"] = str(entry["lastError"])[:1024]
        for key in ("lastHealthCheck", "circuitBreakerState", "circuitLastChanged"):
            if entry.get(key):
                item[key] = entry[key]
        if entry.get("consecutiveFailures"):
            item["consecutiveFailures"] = int(entry["consecutiveFailures"])
        items.append(item)
    return items


def _signature(items: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    # The failure count alone changes at every reconnect attempt of a down backend: not a write.
    return [(i["name"], i["status"], i.get("message", ""), i.get("circuitBreakerState", "")) for i in items]


class StatusWriter:
    """Apply the gateway's backend health to the VirtualMCPServer status when it changes."""

    def __init__(
        self,
        target: StatusTarget,
        entries: Callable[[], list[dict[str, Any]]],
        *,
        interval: float = 5.0,
        transport: Transport | None = None,
    ) -> None:
        self.target = target
        self._entries = entries
        self.interval = interval
        self.transport = transport or KubeTransport(
            service_account(target.api_server, token_file=target.token_file, ca_file=target.ca_file)
        )
        self._sent: list[tuple[str, str, str, str]] | None = None
        self.writes = 0
        """Successful status writes (for tests and metrics)."""

    async def run(self) -> None:
        """Until cancelled: check every ``interval`` seconds; back off (with jitter) after failures."""
        failures = 0
        try:
            while True:
                try:
                    await self.sync()
                    failures = 0
                    delay = self.interval
                except (TransportError, OSError, RuntimeError) as exc:
                    failures += 1
                    delay = min(60.0, self.interval * 2**failures) * random.uniform(0.8, 1.2)
                    log.warning("status write failed", error=str(exc), retry_in=round(delay, 2))
                await anyio.sleep(delay)
        finally:
            await self.transport.close()

    async def sync(self) -> bool:
        """Write once if the health changed since the last successful write; True when written."""
        items = health_items(self._entries())
        signature = _signature(items)
        if signature == self._sent:
            return False
        await self._apply(items)
        self._sent = signature
        self.writes += 1
        return True

    async def _apply(self, items: list[dict[str, Any]]) -> None:
        target = self.target
        body = {
            "apiVersion": "mcp-operator.dev/v1beta1",
            "kind": "VirtualMCPServer",
            "metadata": {"name": target.name, "namespace": target.namespace},
            "status": {"discoveredBackends": items},
        }
        query = {"fieldManager": FIELD_MANAGER, "force": "true"}
        request = Request("PATCH", target.status_path, query, body, "application/apply-patch+yaml", 10.0)
        response = await self.transport.send(request)
        answer = await response.read()
        if response.status >= 300:
            raise RuntimeError(f"PATCH {target.status_path} answered {response.status}: {answer[:300]!r}")
