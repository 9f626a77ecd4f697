"""The manager against the real kube-apiserver: initial sync, prompt edits, probes, metrics, zero writes."""

from __future__ import annotations

import asyncio
import time

import pytest
from kubernetes_asyncio import client

from controller.core import CONFIGMAP, Controller, Manager, ObjectKey, ReconcileContext, Resource, Result
from tests.support.cluster import Cluster
from tests.support.gadgets import (
    GADGET,
    Recorder,
    converging_controller,
    create_gadgets,
    gadget,
    manager_options,
    observing_controller,
    patch_gadget,
    running,
)
from tests.support.metrics import idle, writes
from tests.support.processes import http_get
from tests.support.waiting import until

RESYNC = 0.5
"""The resync period of the zero-writes test: its quiet window is counted in resyncs."""
METRIC_NAMES = [
    "controller_runtime_reconcile_total",
    "controller_runtime_reconcile_errors_total",
    "controller_runtime_reconcile_time_seconds",
    "controller_runtime_active_workers",
    "workqueue_depth",
    "workqueue_adds_total",
    "workqueue_queue_duration_seconds",
    "workqueue_work_duration_seconds",
    "workqueue_retries_total",
    "workqueue_unfinished_work_seconds",
    "workqueue_longest_running_processor_seconds",
    "rest_client_requests_total",
    "rest_client_request_duration_seconds",
    "leader_election_master_status",
]


async def test_initial_objects_reconciled_once_edits_promptly_and_metrics_served(
    cluster: Cluster, api_client: client.ApiClient, namespace: str, gadget_crd: None
) -> None:
    await create_gadgets(api_client, [gadget(namespace, f"g{i:03d}") for i in range(200)])
    recorder = Recorder()
    manager = Manager(
        manager_options(
            cluster.kubeconfig,
            namespaces=[namespace],
            workers=4,
            leader_elect=True,
            leader_election_namespace=namespace,
            leader_election_id="core-test",
        )
    )
    manager.add_controller(observing_controller(recorder))
    async with running(manager):
        await until(lambda: manager.probe_server is not None and manager.probe_server.port != 0, 10, "probes")
        assert manager.probe_server is not None and manager.metrics_server is not None
        await until(lambda: len(recorder.counts) == 200, 60, "all 200 initial objects reconciled")
        await asyncio.sleep(1.0)  # any duplicate reconcile (list + watch overlap) would show up by now
        assert set(recorder.counts.values()) == {1}, "each pre-existing object is reconciled exactly once"
        probe = f"http://127.0.0.1:{manager.probe_server.port}"
        assert await asyncio.to_thread(http_get, f"{probe}/readyz") == (200, "ok")
        assert await asyncio.to_thread(http_get, f"{probe}/healthz") == (200, "ok")

        key = ObjectKey(namespace, "g042")
        latencies = []
        for size in (2, 3, 4):
            before = recorder.counts[key]
            started = time.monotonic()
            await patch_gadget(api_client, namespace, "g042", size)
            await until(lambda s=size: recorder.sizes.get(key) == s, 10, f"edit to size {size} reconciled")
            latencies.append(time.monotonic() - started)
            assert recorder.counts[key] > before
        print(f"edit -> reconcile latency: {', '.join(f'{x * 1000:.0f} ms' for x in latencies)}")

        status, text = await asyncio.to_thread(
            http_get, f"http://127.0.0.1:{manager.metrics_server.port}/metrics"
        )
        assert status == 200
        missing = [name for name in METRIC_NAMES if f"\n{name}" not in text and f" {name}" not in text]
        assert not missing, f"/metrics lacks {missing}"
        assert 'leader_election_master_status{name="core-test"} 1.0' in text
        assert 'controller_runtime_reconcile_total{controller="gadget-observer",result="success"}' in text


async def test_before_sync_readyz_is_503(cluster: Cluster, namespace: str) -> None:
    """A manager watching a kind the server does not serve never syncs, so it never claims readiness."""
    missing = Resource("core-test.mcp-operator.dev", "v1", "Missing", "missings")
    manager = Manager(manager_options(cluster.kubeconfig, namespaces=[namespace]))
    manager.cache.informer(missing)
    async with running(manager):
        await until(lambda: manager.probe_server is not None and manager.probe_server.port != 0, 10, "probes")
        assert manager.probe_server is not None
        await asyncio.sleep(1.0)
        probe = f"http://127.0.0.1:{manager.probe_server.port}"
        assert await asyncio.to_thread(http_get, f"{probe}/readyz") == (503, "not ready")
        assert await asyncio.to_thread(http_get, f"{probe}/healthz") == (200, "ok")


@pytest.mark.slow
async def test_zero_writes_after_convergence_with_resync_on(
    cluster: Cluster, api_client: client.ApiClient, namespace: str, gadget_crd: None
) -> None:
    await create_gadgets(api_client, [gadget(namespace, f"z{i:02d}", size=i) for i in range(20)])
    recorder = Recorder()
    manager = Manager(manager_options(cluster.kubeconfig, namespaces=[namespace], resync_period=RESYNC))
    manager.add_controller(converging_controller(recorder))

    def converged() -> bool:
        objs = manager.cache.list(GADGET, namespace)
        cms = manager.cache.list(CONFIGMAP, namespace)
        ready = [
            o
            for o in objs
            if (o.get("status") or {}).get("observedGeneration") == o["metadata"]["generation"]
        ]
        return len(ready) == 20 and len(cms) == 20

    async with running(manager):
        await until(converged, 60, "20 gadgets converged")  # the status writes' own events are back
        await until(lambda: idle(manager), 30, "the reconciles those events caused")
        before_writes, before_reconciles = writes(manager), sum(recorder.counts.values())
        # The window is 10 resyncs of every gadget, however long they take.
        await until(
            lambda: sum(recorder.counts.values()) >= before_reconciles + 20 * 10,
            60,
            "10 resyncs of 20 gadgets",
        )
        after_writes, after_reconciles = writes(manager), sum(recorder.counts.values())
    assert after_reconciles - before_reconciles >= 20 * 10, (
        f"resync (every {RESYNC} s) should have re-run every gadget"
    )
    assert after_writes - before_writes == 0, "a converged controller must not write"
    print(f"10-resync window: {after_reconciles - before_reconciles} reconciles, 0 writes")


async def test_shutdown_lets_in_flight_reconciles_finish(
    cluster: Cluster, api_client: client.ApiClient, namespace: str, gadget_crd: None
) -> None:
    await create_gadgets(api_client, [gadget(namespace, "slow")])
    started, finished = asyncio.Event(), asyncio.Event()

    async def slow(key: ObjectKey, ctx: ReconcileContext) -> Result:
        started.set()
        await asyncio.sleep(2)  # a reconcile in the middle of its writes when SIGTERM arrives
        finished.set()
        return Result.done()

    manager = Manager(manager_options(cluster.kubeconfig, namespaces=[namespace]))
    manager.add_controller(Controller(name="slow", for_=GADGET, reconcile=slow))
    task = asyncio.create_task(manager.run(handle_signals=False))
    await asyncio.wait_for(started.wait(), 30)
    manager.stop()
    assert await asyncio.wait_for(task, 40) == 0
    assert finished.is_set(), "the in-flight reconcile was cut short"
