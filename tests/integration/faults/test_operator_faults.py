"""Faults of the operator process itself, with ``mcp-operator run`` as a real process.

200 stdio MCPServers converge under two replicas with leader election; the leader is SIGKILLed (no
chance to release its Lease) during the first convergence and the standby must take over. Then, during
the re-convergence a spec change on every server starts, the new leader is SIGKILLed too and a fresh
process is started in its place: the crash-and-restart a Deployment's pod would go through.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.support.cluster import Cluster
from tests.support.faults import Scenario
from tests.support.operator_process import FAST_QPS, OperatorProcess, namespace_on
from tests.support.waiting import until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # several convergences of 200 servers

ELECTION = ("--leader-elect=true", "--leader-election-id=faults-leader", "--workers=4")


async def test_leader_killed_with_standby_then_operator_sigkilled_and_restarted(mcp_crds: Cluster) -> None:
    async with namespace_on(mcp_crds.kubeconfig) as kube:
        processes: list[OperatorProcess] = []

        def start() -> OperatorProcess:
            processes.append(OperatorProcess(mcp_crds.kubeconfig, kube.ns, *FAST_QPS, *ELECTION))
            return processes[-1]

        try:
            # 1. The leader SIGKILLed during the first convergence; the standby takes the Lease.
            scenario = Scenario("leader SIGKILLed, standby takes over", kube)
            leader = start()
            await until(lambda: asyncio.to_thread(leader.leading), 60, "the first replica to lead")
            standby = start()
            await scenario.ready_sentinels()
            assert not await asyncio.to_thread(standby.leading), "only one replica leads"
            scenario.start_rest()
            await scenario.wait_mid_convergence()
            leader.kill()
            scenario.end_fault()
            takeover = await until(lambda: asyncio.to_thread(standby.leading), 60, "the standby to lead")
            print(f"FAULT {scenario.name}: the standby leads {takeover:.1f} s after the kill")
            await scenario.recover()

            # 2. The new leader SIGKILLed during a re-convergence, a new process started in its place.
            scenario.name = "operator SIGKILLed and restarted"
            scenario.start_bump(2)
            await scenario.wait_mid_convergence()
            standby.kill()
            scenario.end_fault()
            restarted = start()
            await scenario.recover()
            assert restarted.leading(), "the restarted process leads"
            assert restarted.stop() == 0, restarted.log_tail()
        finally:
            for process in processes:
                process.stop()
