"""The operator's manager running in the test's event loop, and what it tells about its API writes."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from controller.core import Manager, ManagerOptions
from controller.core.objects import Object
from controller.reconcilers import register
from controller.reconcilers.discovery import with_served_versions
from controller.reconcilers.kinds import MCPSERVER
from controller.reconcilers.settings import ReconcilerSettings
from tests.support.metrics import idle, reconciles, writes
from tests.support.waiting import until

SETTINGS = ReconcilerSettings(proxy_image="example.test/mcp-operator:test")


class ResyncCounter:
    """Counts the informer's resync replays of one kind (an event handler that only counts)."""

    def __init__(self) -> None:
        self.replays = 0

    def on_add(self, obj: Object, *, initial: bool) -> None:
        pass

    def on_update(self, old: Object, new: Object, *, resync: bool) -> None:
        if resync:
            self.replays += 1

    def on_delete(self, obj: Object) -> None:
        pass


class Operator:
    """The operator's manager running in this test's event loop, watching one namespace."""

    def __init__(self, manager: Manager, namespace: str, resyncs: ResyncCounter) -> None:
        self.manager = manager
        self.namespace = namespace
        self.resyncs = resyncs

    async def settled(self, quiet: float = 2.0, within: float = 60.0) -> float:
        """The write count once no write has been sent for ``quiet`` seconds and no reconcile runs or
        waits (other objects settle first)."""
        deadline = time.monotonic() + within
        count, since = self.writes(), time.monotonic()
        while time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            now = self.writes()
            if now != count:
                count, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet and idle(self.manager):
                return count
        raise AssertionError(f"the operator kept writing for {within} s (writes: {count})")

    async def resync_window(self, periods: int, within: float = 120.0) -> None:
        """A window to see what must not happen (a hot loop, a write) in: until every cached MCPServer has
        been replayed by ``periods`` resyncs. Counted in resync periods, not seconds: tests that use it run
        the operator with a short resync period."""
        objects = max(1, len(self.manager.cache.list(MCPSERVER, self.namespace)))
        target = self.resyncs.replays + periods * objects
        await until(lambda: self.resyncs.replays >= target, within, f"{periods} resyncs of the MCPServers")

    def writes(self) -> float:
        """Write requests (POST/PUT/PATCH/DELETE) the operator has sent so far."""
        return writes(self.manager)

    def reconciles(self, controller: str = "mcpserver") -> float:
        return reconciles(self.manager, controller)


@contextlib.asynccontextmanager
async def run_operator(
    kubeconfig: Path,
    namespace: str,
    *,
    inactivity_timeout: float | None = None,
    settings: ReconcilerSettings = SETTINGS,
    **options: Any,
) -> AsyncIterator[Operator]:
    """The operator's manager in this test's event loop; ``inactivity_timeout`` overrides the informers'
    (fault tests lower it to see a silent watch within seconds)."""
    opts = ManagerOptions(
        kubeconfig=str(kubeconfig),
        namespaces=[namespace],
        metrics_bind_address="0",
        health_probe_bind_address="0",
        **options,
    )
    manager = Manager(opts)
    if inactivity_timeout is not None:
        manager.cache.settings.inactivity_timeout = inactivity_timeout
    register(manager, await with_served_versions(settings, manager.client))
    resyncs = ResyncCounter()
    manager.cache.informer(MCPSERVER).add_handler(resyncs)
    task = asyncio.create_task(manager.run(handle_signals=False))
    try:
        await asyncio.wait_for(manager.leading.wait(), 60)
        yield Operator(manager, namespace, resyncs)
    finally:
        manager.stop()
        assert await asyncio.wait_for(task, 90) == 0
