"""The gateway's config from its ConfigMap, through the API server (in the cluster).

The mounted file (:mod:`gateway.vmcp.reload`) is refreshed by the kubelet on its own sync period, up to
about a minute after the operator rewrote the ConfigMap; a member joining or leaving the group would wait
that long. With ``VMCP_CONFIG_MAP`` set (the operator sets it, with a Role allowing ``get`` / ``list`` /
``watch`` on that one ConfigMap), the gateway also watches the object and applies a new config within a
second. Both paths apply the same text; an unchanged config is not applied twice, an invalid one is logged
and the running config stays.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import structlog

from api.vmcp_config import VMCPConfig, parse_vmcp_config
from kube.service_account import service_account
from kube.transport import KubeTransport, Request, Transport, TransportError, decode_json

from .status_writer import StatusTarget

__all__ = ["ConfigMapFeed"]

log = structlog.get_logger("gateway.vmcp.config_feed")

WATCH_SECONDS = 300
"""How long one watch request lasts before it is renewed (the API server closes it then)."""


@dataclass
class ConfigMapFeed:
    """Get, then watch, one ConfigMap; ``apply`` each new valid config under ``key``."""

    target: StatusTarget
    config_map: str
    key: str
    current: Callable[[], VMCPConfig]
    apply: Callable[[VMCPConfig], Awaitable[None]]
    transport: Transport | None = None
    """The API connection; None: the pod's service account."""
    applied: int = 0
    """Configs applied from the API (for tests and logs)."""

    def __post_init__(self) -> None:
        target = self.target
        self._api: Transport = self.transport or KubeTransport(
            service_account(target.api_server, token_file=target.token_file, ca_file=target.ca_file)
        )

    @property
    def path(self) -> str:
        return f"/api/v1/namespaces/{self.target.namespace}/configmaps"

    async def run(self) -> None:
        """Until cancelled: get and watch; after a failure retry with backoff (the file path still works)."""
        failures = 0
        try:
            while True:
                try:
                    version = await self._get()
                    failures = 0
                    await self._watch(version)
                except (TransportError, OSError, RuntimeError, ValueError) as exc:
                    failures += 1
                    # Backoff (2 s doubling to 60 s, jittered): the mounted file keeps delivering changes
                    # meanwhile, so a watch that keeps failing must not hammer the API server.
                    delay = min(60.0, 2.0**failures) * random.uniform(0.8, 1.2)
                    log.warning("config watch failed", config_map=self.config_map, error=str(exc))
                    await anyio.sleep(delay)
        finally:
            await self._api.close()

    async def _get(self) -> str:
        response = await self._api.send(Request("GET", f"{self.path}/{self.config_map}", timeout=10.0))
        body = await response.read()
        if response.status >= 300:
            raise RuntimeError(f"GET configmap {self.config_map} answered {response.status}: {body[:200]!r}")
        obj = decode_json(body)
        await self.offer(obj)
        return str((obj.get("metadata") or {}).get("resourceVersion") or "")

    async def _watch(self, version: str) -> None:
        query = {
            "watch": "1",
            "fieldSelector": f"metadata.name={self.config_map}",
            "resourceVersion": version,
            "timeoutSeconds": str(WATCH_SECONDS),
            "allowWatchBookmarks": "true",
        }
        response = await self._api.send(Request("GET", self.path, query, timeout=None, watch=True))
        try:
            if response.status >= 300:
                raise RuntimeError(f"watch configmap {self.config_map} answered {response.status}")
            async for line in response.lines():
                if not line.strip():
                    continue
                event = decode_json(line)
                kind = event.get("type")
                if kind == "ERROR":  # e.g. 410 Gone: the version is too old; get again
                    return
                if kind in ("ADDED", "MODIFIED"):
                    await self.offer(event.get("object") or {})
        finally:
            response.close()

    async def offer(self, obj: dict[str, Any]) -> bool:
        """Apply the config in ``obj`` (a ConfigMap) when it is valid and differs from the running one."""
        text = (obj.get("data") or {}).get(self.key)
        if not isinstance(text, str):
            return False
        try:
            config = parse_vmcp_config(text, f"configmap {self.config_map}")
        except ValueError as exc:
            log.error("config from the API is invalid; keeping the running config", error=str(exc))
            return False
        if config == self.current():
            return False
        await self.apply(config)
        self.applied += 1
        log.info("config applied from the API", backends=[b.name for b in config.backends])
        return True
