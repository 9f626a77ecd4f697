"""Hot reload of the gateway's config file: poll its mtime (and size), re-read, apply.

ConfigMap volumes are updated by the kubelet through an atomic symlink swap, which inotify on the file
path misses; polling ``os.stat`` (which follows the symlink) sees it. A file that fails to parse or
validate is reported and the running config stays in force.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import structlog

from api.vmcp_config import VMCPConfig, load_vmcp_config

__all__ = ["ConfigWatcher"]

log = structlog.get_logger("gateway.vmcp.reload")


class ConfigWatcher:
    """Calls ``apply(new_config)`` whenever the file at ``path`` changes to a valid config."""

    def __init__(
        self,
        path: str | Path,
        apply: Callable[[VMCPConfig], Awaitable[None]],
        *,
        interval: float = 1.0,
    ) -> None:
        self.path = Path(path)
        self.apply = apply
        self.interval = interval
        self.last_error: str | None = None
        self._stamp = self._current_stamp()

    def _current_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    async def check(self) -> bool:
        """One poll; True when a new config was applied."""
        stamp = self._current_stamp()
        if stamp is None or stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            config = load_vmcp_config(self.path)
        except (OSError, ValueError) as exc:
            self.last_error = str(exc)
            log.error("config reload failed; keeping the running config", path=str(self.path), error=str(exc))
            return False
        self.last_error = None
        await self.apply(config)
        log.info("config reloaded", path=str(self.path), backends=[b.name for b in config.backends])
        return True

    async def run(self) -> None:
        while True:
            await anyio.sleep(self.interval)
            await self.check()
