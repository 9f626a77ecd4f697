"""Many concurrent requests stay cheap in memory on the operator's event loop.

At the height of creation the operator keeps ~100 pooled TLS connections open. On asyncio's default
loop each costs ~300 KB of resident memory (a zero-filled 256 KiB read buffer per connection), about
30 MB for the pool; on the operator's loop (``controller.main.new_event_loop``) the pool costs a few MB.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.cluster import Cluster

ROOT = Path(__file__).resolve().parents[3]
CONNECTIONS = 100

SCRIPT = """
import asyncio, sys
from kube.transport import KubeTransport, Request
from controller.main import new_event_loop

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

async def main():
    transport = await KubeTransport.from_kubeconfig(sys.argv[1])
    async def one():
        response = await transport.send(Request("GET", "/api/v1/namespaces/default"))
        await response.read()
    await one()
    before = rss_mb()
    await asyncio.gather(*(one() for _ in range(int(sys.argv[2]))))
    print(rss_mb() - before)
    await transport.close()

with asyncio.Runner(loop_factory=new_event_loop) as runner:
    runner.run(main())
"""


def test_a_hundred_concurrent_connections_cost_a_few_megabytes(cluster: Cluster) -> None:
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(cluster.kubeconfig), str(CONNECTIONS)],
        capture_output=True, text=True, timeout=120, check=True, cwd=ROOT,
    )  # fmt: skip
    grown_mb = float(run.stdout.strip())
    assert grown_mb < 15, f"{CONNECTIONS} concurrent requests grew RSS by {grown_mb:.1f} MB"
