"""Two manager processes: exactly one leads, the follower never writes, a killed leader is replaced fast."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from kubernetes_asyncio import client

from tests.support.cluster import ROOT, Cluster
from tests.support.gadgets import create_gadgets, gadget, patch_gadget
from tests.support.processes import free_port, http_get

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


class Child:
    def __init__(self, cluster: Cluster, namespace: str, lease: str, log: Path) -> None:
        self.metrics_port, self.health_port = free_port(), free_port()
        self.log = log
        self._log_file = log.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.integration.core.le_child",
                str(cluster.kubeconfig),
                namespace,
                lease,
                str(self.metrics_port),
                str(self.health_port),
            ],
            cwd=ROOT,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )

    def metrics(self) -> dict[str, float]:
        status, text = http_get(f"http://127.0.0.1:{self.metrics_port}/metrics")
        assert status == 200
        leader = writes = 0.0
        for line in text.splitlines():
            if line.startswith("leader_election_master_status{"):
                leader = float(line.rsplit(" ", 1)[1])
            elif line.startswith("rest_client_requests_total{") and any(
                f'method="{m}"' in line for m in WRITE_METHODS
            ):
                writes += float(line.rsplit(" ", 1)[1])
        return {"leader": leader, "writes": writes}

    def ready(self) -> bool:
        try:
            return http_get(f"http://127.0.0.1:{self.health_port}/readyz")[0] == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log_file.close()

    def log_tail(self, lines: int = 40) -> str:
        """The end of the process's log, printed when the test fails (the children log to a file)."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


async def wait_for(check, within: float, what: str) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    while True:
        try:
            if await asyncio.to_thread(check):
                return time.monotonic() - started
        except OSError:
            pass
        if time.monotonic() - started > within:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.2)


async def test_one_leader_follower_never_writes_and_takes_over_within_20s(
    cluster: Cluster, api_client: client.ApiClient, namespace: str, gadget_crd: None, tmp_path: Path
) -> None:
    await create_gadgets(api_client, [gadget(namespace, f"le{i}") for i in range(5)])
    lease = f"le-{uuid.uuid4().hex[:6]}"
    first = Child(cluster, namespace, lease, tmp_path / "first.log")
    second: Child | None = None
    try:
        await wait_for(lambda: first.metrics()["leader"] == 1.0, 30, "the first process to lead")
        second = Child(cluster, namespace, lease, tmp_path / "second.log")
        await wait_for(second.ready, 30, "the second process's caches to sync")
        await asyncio.sleep(5)  # several retry periods: the follower keeps checking the lease
        a, b = first.metrics(), second.metrics()
        assert (a["leader"], b["leader"]) == (1.0, 0.0), "exactly one process leads"
        assert a["writes"] > 0, "the leader reconciles (and renews its lease)"
        assert b["writes"] == 0, "the follower must not write anything"

        first.proc.send_signal(signal.SIGKILL)  # no chance to release the lease
        first.proc.wait()
        takeover = await wait_for(lambda: second.metrics()["leader"] == 1.0, 20, "the follower to take over")
        print(f"leader killed -> follower leads after {takeover:.1f} s")
        await patch_gadget(api_client, namespace, "le0", 42)
        core = client.CoreV1Api(api_client)

        async def cm_size() -> str:
            cm = await core.read_namespaced_config_map("le0-data", namespace)
            return str(cm.data["size"])

        deadline = time.monotonic() + 15
        while await cm_size() != "42":
            assert time.monotonic() < deadline, "the new leader does not reconcile"
            await asyncio.sleep(0.2)
        second.proc.send_signal(signal.SIGTERM)
        assert second.proc.wait(timeout=40) == 0
    except AssertionError:
        for child in (first, second):
            if child is not None:
                print(f"--- {child.log.name} (last lines)\n{child.log_tail()}")
        raise
    finally:
        first.stop()
        if second is not None:
            second.stop()
