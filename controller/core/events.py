"""Kubernetes Events for user-visible transitions, deduplicated so a level-triggered loop stays quiet."""

from __future__ import annotations

import hashlib
import os
import socket
from typing import TYPE_CHECKING

import structlog

from controller.core.client import ApiError
from controller.core.clock import Clock, MonotonicClock
from controller.core.objects import Object, rfc3339
from kube.transport import TransportError

if TYPE_CHECKING:
    from controller.core.client import KubeClient

log = structlog.get_logger("mcp-operator.events")

NORMAL = "Normal"
WARNING = "Warning"


class EventRecorder:
    """``record(obj, type, reason, message)``; a repeat within ``dedupe_window`` seconds is dropped."""

    def __init__(
        self,
        client: KubeClient,
        *,
        component: str = "mcp-operator",
        dedupe_window: float = 3600.0,
        clock: Clock | None = None,
    ) -> None:
        self._client = client
        self.component = component
        self.instance = f"{socket.gethostname()}-{os.getpid()}"
        self.dedupe_window = dedupe_window
        self._clock = clock or MonotonicClock()
        self._recent: dict[tuple[str, str, str, str], float] = {}

    async def record(self, obj: Object, type_: str, reason: str, message: str) -> bool:
        """Create an Event about ``obj``; True when sent, False when deduplicated or it failed.

        Failures are logged, never raised: an Event is a courtesy, not part of reconciliation.
        """
        if type_ not in (NORMAL, WARNING):
            raise ValueError(f"event type must be '{NORMAL}' or '{WARNING}', got '{type_}'")
        meta = obj.get("metadata") or {}
        dedupe_key = (str(meta.get("uid") or meta.get("name")), type_, reason, message)
        now = self._clock.now()
        last = self._recent.get(dedupe_key)
        if last is not None and now - last < self.dedupe_window:
            return False
        self._recent[dedupe_key] = now
        self._prune(now)
        namespace = meta.get("namespace") or "default"
        digest = hashlib.sha256("/".join(dedupe_key).encode()).hexdigest()[:10]
        stamp = rfc3339()
        event = {
            "metadata": {
                "name": f"{meta.get('name')}.{digest}{int(now * 1000) % 100000:05d}",
                "namespace": namespace,
            },
            "involvedObject": {
                "apiVersion": obj.get("apiVersion"),
                "kind": obj.get("kind"),
                "name": meta.get("name"),
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": self.component},
            "reportingComponent": self.component,
            "reportingInstance": self.instance,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            await self._client.create_event(event)
        except (ApiError, TransportError) as exc:
            quiet = isinstance(exc, ApiError) and exc.expected_in_teardown  # its namespace is going away
            (log.debug if quiet else log.warning)(
                "could not record event", reason=reason, object=meta.get("name"), error=str(exc)
            )
            del self._recent[dedupe_key]
            return False
        return True

    def _prune(self, now: float) -> None:
        if len(self._recent) > 4096:
            self._recent = {k: t for k, t in self._recent.items() if now - t < self.dedupe_window}
