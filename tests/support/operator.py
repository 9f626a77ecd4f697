"""The operator's manager running in the test's event loop, and what it tells about its API writes."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from controller.core import Manager, ManagerOptions
from controller.reconcilers import register
from controller.reconcilers.settings import ReconcilerSettings

SETTINGS = ReconcilerSettings(proxy_image="example.test/mcp-operator:test")


class Operator:
    """The operator's manager running in this test's event loop, watching one namespace."""

    def __init__(self, manager: Manager, namespace: str) -> None:
        self.manager = manager
        self.namespace = namespace

    async def settled(self, quiet: float = 2.0, within: float = 60.0) -> float:
        """The write count once no write has been sent for ``quiet`` seconds (other objects settle first)."""
        deadline = time.monotonic() + within
        count = self.writes()
        while time.monotonic() < deadline:
            await asyncio.sleep(quiet)
            now = self.writes()
            if now == count:
                return count
            count = now
        raise AssertionError(f"the operator kept writing for {within} s (writes: {count})")

    def writes(self) -> float:
        """Write requests (POST/PUT/PATCH/DELETE) the operator has sent so far."""
        total = 0.0
        for metric in self.manager.metrics.registry.collect():
            if metric.name == "rest_client_requests":
                for sample in metric.samples:
                    if sample.name.endswith("_total") and sample.labels.get("method") in (
                        "POST",
                        "PUT",
                        "PATCH",
                        "DELETE",
                    ):
                        total += sample.value
        return total

    def reconciles(self, controller: str = "mcpserver") -> float:
        total = 0.0
        for metric in self.manager.metrics.registry.collect():
            if metric.name == "controller_runtime_reconcile":
                for sample in metric.samples:
                    if sample.name.endswith("_total") and sample.labels.get("controller") == controller:
                        total += sample.value
        return total


@contextlib.asynccontextmanager
async def run_operator(
    kubeconfig: Path, namespace: str, *, inactivity_timeout: float | None = None, **options: Any
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
    register(manager, SETTINGS)
    task = asyncio.create_task(manager.run(handle_signals=False))
    try:
        await asyncio.wait_for(manager.leading.wait(), 60)
        yield Operator(manager, namespace)
    finally:
        manager.stop()
        assert await asyncio.wait_for(task, 90) == 0
