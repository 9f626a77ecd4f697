"""A manager process for the leader-election test: the converging Gadget controller under a Lease.

python -m tests.integration.core.le_child KUBECONFIG NAMESPACE LEASE_ID METRICS_PORT HEALTH_PORT
"""

from __future__ import annotations

import asyncio
import sys

from controller.core import Manager, ManagerOptions
from logs import configure_logging
from tests.support.gadgets import Recorder, converging_controller


async def main(kubeconfig: str, namespace: str, lease_id: str, metrics_port: str, health_port: str) -> int:
    manager = Manager(
        ManagerOptions(
            kubeconfig=kubeconfig,
            namespaces=[namespace],
            leader_elect=True,
            leader_election_namespace=namespace,
            leader_election_id=lease_id,
            metrics_bind_address=f"127.0.0.1:{metrics_port}",
            health_probe_bind_address=f"127.0.0.1:{health_port}",
        )
    )
    manager.add_controller(converging_controller(Recorder()))
    return await manager.run()


if __name__ == "__main__":
    configure_logging("info", "json")
    sys.exit(asyncio.run(main(*sys.argv[1:6])))
