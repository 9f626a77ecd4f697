"""One warning per interval about telemetry that could not be exported (spans, metric points), never one
per item or batch: a collector that is down must not flood the logs of the process it observes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["WARN_INTERVAL", "DropWarning"]

WARN_INTERVAL = 60.0
"""Seconds between two warnings about telemetry that could not be exported."""


class DropWarning:
    """Counts ``what`` (e.g. ``spans``) dropped since the last warning; :meth:`warn_if_due`, called by the
    export thread, logs at most once per :data:`WARN_INTERVAL` with that count, prefixed with ``signal``
    (``tracing``, ``metrics``) on the logger ``mcp_operator.<signal>``. ``clock`` is injectable."""

    def __init__(
        self, signal: str, what: str, endpoint: str, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.signal = signal
        self.logger = logging.getLogger(f"mcp_operator.{signal}")
        self.what = what
        self.endpoint = endpoint
        self.unreported = 0
        """Dropped since the last warning (a plain int: adding to it is the drop path's only cost)."""
        self._clock = clock
        self._last: float | None = None

    def warn_if_due(self) -> None:
        if not self.unreported:
            return
        now = self._clock()
        if self._last is not None and now - self._last < WARN_INTERVAL:
            return
        self._last = now
        dropped, self.unreported = self.unreported, 0
        self.logger.warning(
            "%s: %d %s could not be exported to %s and were dropped (collector unreachable, answering "
            "errors or too slow); MCP traffic is not affected; next warning in %.0f s at the earliest",
            self.signal,
            dropped,
            self.what,
            self.endpoint,
            WARN_INTERVAL,
        )
