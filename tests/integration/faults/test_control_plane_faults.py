"""Faults of the control plane under the operator, on a cluster instance of this module's own.

One namespace of 200 stdio MCPServers goes through five faults in a row, each injected while the
servers converge: the first during their creation, the others during the re-convergence that a spec
change on every server starts. The operator runs in process (the faults are not about its process),
as a ServiceAccount bound to cluster-admin, as it would in a cluster.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.support.cluster import Cluster, instance_pid, kill_component
from tests.support.faults import Scenario
from tests.support.metrics import metric_total
from tests.support.operator import run_operator
from tests.support.operator_process import namespace_on, service_account_kubeconfig
from tests.support.waiting import until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # several convergences of 200 servers

INACTIVITY_TIMEOUT = 5.0
"""Lowered from the default 70 s so the stalled-watch scenario runs in seconds; the default takes the same
path, only later (tests/unit/core/test_informer_silent_watch.py tests what a silent watch does)."""
FAST = {"qps": 0.0, "burst": 1000, "workers": 4}
"""The client-side limiter off (20 qps would make the ~1,800 writes of a convergence take 90 s and only
measure the limiter); four workers so requests are in flight when the fault hits."""
THROTTLING_FLAGS = (
    "--enable-priority-and-fairness=false --max-requests-inflight=1 --max-mutating-requests-inflight=1"
)
"""The classic in-flight limits (priority and fairness off: it would queue instead of answering 429)."""


async def test_apiserver_etcd_stall_competing_writer_and_429(faults_cluster: Cluster, tmp_path: Path) -> None:
    instance = str(faults_cluster.instance)
    async with namespace_on(faults_cluster.kubeconfig) as kube:
        kubeconfig = await service_account_kubeconfig(kube, faults_cluster.kubeconfig, tmp_path)
        async with run_operator(
            kubeconfig, kube.ns, inactivity_timeout=INACTIVITY_TIMEOUT, **FAST
        ) as operator:
            # 1. kube-apiserver SIGKILLed during the first convergence, restarted.
            scenario = Scenario("kube-apiserver killed and restarted", kube)
            await scenario.ready_sentinels()
            scenario.start_rest()
            await kill_and_restart(scenario, faults_cluster, "kube-apiserver")

            # 2. etcd SIGKILLed during a re-convergence, restarted (kube-apiserver keeps running).
            scenario.name = "etcd killed and restarted"
            scenario.start_bump(2)
            await kill_and_restart(scenario, faults_cluster, "etcd", outage=2.0)

            # 3. The watch silently stalled: kube-apiserver SIGSTOPped for twice the inactivity timeout.
            scenario.name = "watch stalled (kube-apiserver SIGSTOPped)"
            scenario.start_bump(3)
            await scenario.wait_mid_convergence()
            pid = instance_pid(instance, "kube-apiserver")
            os.kill(pid, signal.SIGSTOP)
            try:
                await asyncio.sleep(2 * INACTIVITY_TIMEOUT)
            finally:
                os.kill(pid, signal.SIGCONT)
            scenario.end_fault()
            await scenario.recover()

            # 4. A competing writer takes a field we own on every proxy Deployment (force apply).
            scenario.name = "competing writer on a child field"
            scenario.start_bump(4)
            await scenario.wait_mid_convergence()
            await compete(kube.apps, kube.ns, [n for n in scenario.names if n not in scenario.sentinels])
            scenario.end_fault()
            await until(
                lambda: images_restored(kube.apps, kube.ns), 120, "every proxy image to be ours again"
            )
            await scenario.recover()
            writes = operator.writes()
            await asyncio.sleep(10)
            extra = operator.writes() - writes
            print(f"FAULT competing writer: {extra:.0f} writes in the 10 s after convergence")
            assert extra == 0, f"{extra:.0f} writes after the competitor was overruled: a hot loop"

        # 5. 429: kube-apiserver restarted with in-flight limits of 1; the operator keeps its default
        #    client-side limiter (20 qps / 30 burst), as shipped, to show that it and 429 Retry-After
        #    together converge (two workers, the default, already put two writes in flight at once).
        scenario.name = "429 from --max-requests-inflight=1"
        kill_component(instance, "kube-apiserver")
        env = dict(faults_cluster.env, MCP_OPERATOR_APISERVER_FLAGS=THROTTLING_FLAGS)
        cmdline = await asyncio.to_thread(restart_with, faults_cluster, env)
        assert b"--max-requests-inflight=1" in cmdline, "hack/cluster passes MCP_OPERATOR_APISERVER_FLAGS"
        async with run_operator(kubeconfig, kube.ns) as throttled:
            scenario.end_fault()  # the limits stay: recovery here is from the spec change to convergence
            scenario.start_bump(5)
            await scenario.wait_mid_convergence(within=300)  # every write may meet a 429 first
            await scenario.recover(within=300)  # a new operator at 20 qps: workloads and statuses
            retried = metric_total(throttled.manager, "rest_client_request_retries", code="429")
            print(f"FAULT 429: {retried:.0f} requests answered 429 and retried after Retry-After")
            assert retried > 0, "the API server never answered 429: the scenario did not throttle"


async def kill_and_restart(scenario: Scenario, cluster: Cluster, component: str, outage: float = 0.0) -> None:
    """SIGKILL ``component`` once the change in flight is part-way converged, keep it down for ``outage``
    seconds (the fault's length, not a wait for anything), restart it and measure the recovery."""
    await scenario.wait_mid_convergence()
    kill_component(str(cluster.instance), component)
    await asyncio.sleep(outage)
    await asyncio.to_thread(cluster.hack, "up")
    scenario.end_fault()
    await scenario.recover()


def restart_with(cluster: Cluster, env: dict[str, str]) -> bytes:
    """``hack/cluster up`` with ``env``; the command line of the kube-apiserver it started."""
    original = cluster.env
    cluster.env = env
    try:
        cluster.hack("up")
    finally:
        cluster.env = original
    return Path(f"/proc/{instance_pid(str(cluster.instance), 'kube-apiserver')}/cmdline").read_bytes()


COMPETITOR_IMAGE = "example.test/competitor:1"


async def compete(apps: Any, namespace: str, names: list[str]) -> None:
    """Server-side apply the proxy container's image under another field manager, with force."""
    sem = asyncio.Semaphore(16)

    async def one(name: str) -> None:
        body = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {"template": {"spec": {"containers": [{"name": "proxy", "image": COMPETITOR_IMAGE}]}}},
        }
        async with sem:
            await apps.patch_namespaced_deployment(
                name,
                namespace,
                body,
                field_manager="competitor",
                force=True,
                _content_type="application/apply-patch+yaml",
            )

    await asyncio.gather(*(one(n) for n in names))


async def images_restored(apps: Any, namespace: str) -> bool:
    listed = await apps.list_namespaced_deployment(namespace)
    images = [c.image for d in listed.items for c in d.spec.template.spec.containers]
    return bool(images) and COMPETITOR_IMAGE not in images
