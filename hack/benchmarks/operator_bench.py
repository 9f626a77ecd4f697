"""``hack/bench_operator``: scale and cost of the operator against the local control plane, beside a
bare-loop floor.

For N stdio MCPServers (8 children each plus a status write) it measures, per repeat:
- the floor: the same children built by the same pure builders and applied by a bare asyncio loop with
  the operator's own ``KubeClient`` and event loop (no informer, queue or reconciler) at concurrency 16
  and 64, for creation and for an image roll (only the children whose body changed, plus status);
  done when the same watch that times the operator has seen every status;
- the operator (``mcp-operator run`` as a subprocess, client-side limiter off): time to convergence
  (``status.observedGeneration == metadata.generation`` on all N, then every child checked), API writes
  per MCPServer from the API server's ``apiserver_request_total`` minus the benchmark's own, reconciles
  per MCPServer from the operator's ``/metrics``, peak and final RSS, the image roll, and deletion;
- once (last repeat): writes in a steady window with resync on, and the latency of one edit at idle
  reaching its StatefulSet.

    hack/bench_operator [--n 1000] [--repeats 2] [--steady 300] [--write-docs] [--json FILE]

Without ``--kubeconfig`` it starts its own control plane instance (``MCP_OPERATOR_CLUSTER``, default
``bench``) with ``hack/cluster up`` and stops it afterwards if it started it. Every process it starts is
stopped by pid.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import functools
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path

from controller.core.client import KubeClient
from controller.core.resources import NAMESPACE, SERVICE, STATEFULSET
from controller.main import new_event_loop, tune_gc
from controller.reconcilers.kinds import MCPSERVER
from hack.benchmarks.common import DOC, ROOT, cpu_seconds, free_port, machine, write_section
from hack.benchmarks.operator_cluster import (
    CHILD_KINDS,
    EXPECTED_PER_SERVER,
    IMAGE_1,
    IMAGE_2,
    WRITE_VERBS,
    Floor,
    Tracker,
    apiserver_writes,
    bounded,
    control_plane_pids,
    delta,
    names,
    own_writes,
    say,
    server_manifest,
)
from hack.benchmarks.operator_report import (
    MARK_END,
    MARK_START,
    USER_CONCURRENCY,
    Measurements,
    Settings,
    notes_of,
    report,
    section,
)
from kube.transport import KubeTransport, Request


@dataclass
class OperatorProcess:
    """``mcp-operator run`` for one namespace; RSS sampled while it runs."""

    kubeconfig: str
    namespace: str
    workers: int
    resync: float
    log_path: Path
    profile: str | None = None
    proc: subprocess.Popen[bytes] | None = None
    profiler: subprocess.Popen[bytes] | None = None
    metrics_port: int = 0
    peak_rss_mb: float = 0.0
    _sampler: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.metrics_port, health = free_port(), free_port()
        cmd = [
            sys.executable, "-m", "controller.cli", "run",
            "--kubeconfig", self.kubeconfig, "--namespace", self.namespace,
            "--metrics-bind-address", f"127.0.0.1:{self.metrics_port}",
            "--health-probe-bind-address", f"127.0.0.1:{health}",
            "--workers", str(self.workers), "--kube-api-qps", "0", "--kube-api-burst", "1000",
            "--resync-period", str(self.resync), "--log-level", "warning",
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)  # noqa: ASYNC220
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the operator exited with {self.proc.returncode}; see {self.log_path}")
            if await asyncio.to_thread(http_get, f"http://127.0.0.1:{health}/readyz") == 200:
                self._sampler = asyncio.create_task(self._sample())
                if self.profile:  # py-spy (not a project dependency): pip install py-spy
                    self.profiler = subprocess.Popen(  # noqa: ASYNC220
                        ["py-spy", "record", "--pid", str(self.proc.pid), "--format", "raw", "--nonblocking",
                         "--rate", "200", "-o", self.profile],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    )  # fmt: skip
                return
            await asyncio.sleep(0.2)
        raise RuntimeError(f"the operator was not ready within 120 s; see {self.log_path}")

    def rss_mb(self, field_name: str = "VmRSS") -> float:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024
        return 0.0

    async def _sample(self) -> None:
        while True:
            self.peak_rss_mb = max(self.peak_rss_mb, self.rss_mb("VmHWM"))
            await asyncio.sleep(0.5)

    def metrics(self) -> dict[str, float]:
        text = http_text(f"http://127.0.0.1:{self.metrics_port}/metrics")
        out: dict[str, float] = {"reconciles": 0.0, "writes": 0.0}
        for line in text.splitlines():
            if line.startswith('controller_runtime_reconcile_total{controller="mcpserver"'):
                out["reconciles"] += float(line.rsplit(" ", 1)[1])
            elif line.startswith("rest_client_requests_total{"):
                method = re.search(r'method="(\w+)"', line)
                if method and method.group(1) in WRITE_VERBS:
                    out["writes"] += float(line.rsplit(" ", 1)[1])
        return out

    async def stop(self) -> None:
        if self.profiler is not None:
            self.profiler.send_signal(signal.SIGINT)
            await asyncio.to_thread(self.profiler.wait, 30)
        if self._sampler is not None:
            self._sampler.cancel()
            await asyncio.gather(self._sampler, return_exceptions=True)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                await asyncio.to_thread(self.proc.wait, 30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                await asyncio.to_thread(self.proc.wait)


def http_get(url: str) -> int:
    import urllib.request  # noqa: PLC0415

    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status)
    except OSError:
        return 0


def http_text(url: str) -> str:
    import urllib.request  # noqa: PLC0415

    with urllib.request.urlopen(url, timeout=10) as resp:
        return str(resp.read().decode())


@dataclass
class Bench:
    args: argparse.Namespace
    transport: KubeTransport
    user: KubeClient
    m: Measurements = field(default_factory=Measurements)
    client_pid: int = 0
    """The process doing the work measured: the operator's, or 0 for this one (the floor)."""
    last_cpu: tuple[float, float] = (0.0, 0.0)
    """CPU seconds of (kube-apiserver + etcd, the client process) during the last measured phase."""

    def record_phase(self, phase: str, seconds: float, writes: dict[str, int], own: int, n: int) -> None:
        """A phase's time, CPU and API writes per MCPServer (``phase``: ``operator.create``, ...)."""
        self.m.record(f"{phase}_s", seconds)
        self.m.record(f"{phase}_cpu_plane_s", self.last_cpu[0])
        self.m.record(f"{phase}_cpu_client_s", self.last_cpu[1])
        self.m.counts[f"{phase}_writes_per_server"] = (sum(writes.values()) - own) / n

    async def operator_phase(
        self,
        op: OperatorProcess,
        phase: str,
        func: Callable[[], Awaitable[None]],
        before: dict[str, float],
        namespace: str,
        image: str,
    ) -> tuple[float, dict[str, int]]:
        """Time ``func`` (creation or roll) with the operator at work: its writes by resource, its own
        count of writes and reconciles per MCPServer, and the children missing afterwards."""
        n = self.args.n
        seconds, writes, own = await self.writes_during(func)
        after = op.metrics()
        self.record_phase(phase, seconds, writes, own, n)
        self.m.counts[f"{phase}_writes_by_resource"] = writes
        self.m.counts[f"{phase}_own_writes_per_server"] = (after["writes"] - before["writes"]) / n
        self.m.counts[f"{phase}_reconciles_per_server"] = (after["reconciles"] - before["reconciles"]) / n
        self.m.counts[f"{phase}_missing_children"] = await self.verify_children(namespace, n, image)
        return seconds, writes

    async def namespace(self, prefix: str) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        await self.user.create(NAMESPACE, {"metadata": {"name": name}})
        return name

    async def cleanup(self, namespace: str) -> None:
        """Remove what a phase left (no garbage collector runs): every counted kind, by collection.

        kube-apiserver 1.20 refuses a DELETE of the Services collection (405), so Services go one by one.
        Left behind, each kept its ClusterIP: 65 phases filled the 10.96.0.0/16 range, and long before
        that the API server's ClusterIP repair loop listed tens of thousands of Services every 3 minutes
        and allocations searched an ever fuller range, slowing whichever phase they fell in.
        """
        for resource in (MCPSERVER, *CHILD_KINDS.values()):
            if resource == SERVICE:
                items, _ = await self.user.list(SERVICE, namespace)

                async def delete(name: str) -> None:
                    await self.user.delete(SERVICE, namespace, name)

                await bounded([item["metadata"]["name"] for item in items], USER_CONCURRENCY, delete)
                continue
            response = await self.transport.send(Request("DELETE", resource.collection_path(namespace)))
            body = await response.read()
            if response.status >= 300:
                failed = f"{response.status} {body[:200]!r}"
                raise RuntimeError(f"DELETE {resource.plural} in {namespace}: {failed}")

    async def writes_during(self, func: Callable[[], Awaitable[None]]) -> tuple[float, dict[str, int], int]:
        """Seconds, API server write deltas by resource, and the benchmark's own writes, around ``func``."""
        before, own_before = await apiserver_writes(self.transport), own_writes(self.user)
        planes = control_plane_pids(self.args.kubeconfig)
        plane_before = sum(cpu_seconds(pid) for pid in planes)
        client_before = cpu_seconds(self.client_pid or os.getpid())
        started = time.monotonic()
        await func()
        elapsed = time.monotonic() - started
        self.last_cpu = (
            sum(cpu_seconds(pid) for pid in planes) - plane_before,
            cpu_seconds(self.client_pid or os.getpid()) - client_before,
        )
        after = await apiserver_writes(self.transport)
        return elapsed, delta(after, before), own_writes(self.user) - own_before

    async def verify_children(self, namespace: str, n: int, image: str) -> int:
        """How many expected children are missing (or, for StatefulSets, not on ``image``)."""
        missing = 0
        for kind, per_server in EXPECTED_PER_SERVER.items():
            items, _ = await self.user.list(CHILD_KINDS[kind], namespace)
            missing += max(0, per_server * n - len(items))
            if kind == "StatefulSet":
                missing += sum(
                    1 for s in items if s["spec"]["template"]["spec"]["containers"][0]["image"] != image
                )
        return missing

    async def floor(self, concurrency: int, n: int) -> None:
        namespace = await self.namespace(f"floor{concurrency}")
        client = KubeClient(await KubeTransport.from_kubeconfig(self.args.kubeconfig), qps=0)
        floor = Floor(client, self.user, namespace, concurrency)
        # Convergence is observed as for the operator: by the same watch on the MCPServers.
        tracker = Tracker(self.user, namespace)
        await tracker.start()

        async def create() -> None:
            await floor.create(n)
            await tracker.until(lambda: tracker.converged(n, 1), self.args.timeout)

        async def roll() -> None:
            await floor.roll(n)
            await tracker.until(lambda: tracker.converged(n, 2), self.args.timeout)

        try:
            sent = own_writes(client)
            seconds, writes, own = await self.writes_during(create)
            self.m.counts[f"floor{concurrency}.create_own_writes_per_server"] = (
                own_writes(client) - sent
            ) / n
            self.record_phase(f"floor{concurrency}.create", seconds, writes, own, n)
            sent = own_writes(client)
            seconds, writes, own = await self.writes_during(roll)
            self.m.counts[f"floor{concurrency}.roll_own_writes_per_server"] = (own_writes(client) - sent) / n
            self.record_phase(f"floor{concurrency}.roll", seconds, writes, own, n)
            say(f"floor c={concurrency}: create {self.m.results[f'floor{concurrency}.create_s'][-1]:.1f} s, "
                f"roll {seconds:.1f} s")  # fmt: skip
        finally:
            await tracker.stop()
            await client.close()
            await self.cleanup(namespace)

    async def operator(self, n: int, last: bool) -> None:
        namespace = await self.namespace("op")
        op = OperatorProcess(
            self.args.kubeconfig, namespace, self.args.workers, self.args.resync, Path(self.args.log),
            self.args.profile,
        )  # fmt: skip
        tracker = Tracker(self.user, namespace)
        await tracker.start()
        try:
            await op.start()
            assert op.proc is not None
            self.client_pid = op.proc.pid
            rss_idle = op.rss_mb()
            m0 = op.metrics()

            async def create() -> None:
                async def one(name: str) -> None:
                    await self.user.create(MCPSERVER, server_manifest(namespace, name, IMAGE_1))

                await bounded(names(n), USER_CONCURRENCY, one)
                await tracker.until(lambda: tracker.converged(n, 1), self.args.timeout)

            seconds, writes = await self.operator_phase(op, "operator.create", create, m0, namespace, IMAGE_1)
            self.m.record("operator.rss_idle_mb", rss_idle)
            say(f"operator: create {seconds:.1f} s, {self.m.counts['operator.create_writes_per_server']:.2f} "
                f"writes/server {writes}")  # fmt: skip

            if last:
                await self.steady(op, tracker, namespace, n)
            m1 = op.metrics()

            rolled: dict[str, int] = {}

            async def roll() -> None:
                async def one(name: str) -> None:
                    patched = await self.user.patch(MCPSERVER, namespace, name, {"spec": {"image": IMAGE_2}})
                    rolled[name] = int(patched["metadata"]["generation"])

                await bounded(names(n), USER_CONCURRENCY, one)
                # By each server's own new generation: servers edited in the steady window are one ahead,
                # and their status from before the roll would otherwise pass for the roll's.
                await tracker.until(lambda: tracker.observed(rolled), self.args.timeout)

            seconds, writes = await self.operator_phase(op, "operator.roll", roll, m1, namespace, IMAGE_2)
            await asyncio.sleep(2)  # let late watch events land before the final RSS
            self.m.record("operator.rss_peak_mb", max(op.peak_rss_mb, op.rss_mb("VmHWM")))
            self.m.record("operator.rss_final_mb", op.rss_mb())
            say(f"operator: roll {seconds:.1f} s, writes {writes}; RSS peak {op.peak_rss_mb:.0f} MB")

            async def delete() -> None:
                async def one(name: str) -> None:
                    await self.user.delete(MCPSERVER, namespace, name)

                await bounded(names(n), USER_CONCURRENCY, one)
                await tracker.until(lambda: not tracker.objects, self.args.timeout)

            seconds, writes, own = await self.writes_during(delete)
            self.m.record("operator.delete_s", seconds)
            self.m.counts["operator.delete_writes_per_server"] = (sum(writes.values()) - own) / n
        finally:
            self.client_pid = 0
            await tracker.stop()
            await op.stop()
            await self.cleanup(namespace)

    async def steady(self, op: OperatorProcess, tracker: Tracker, namespace: str, n: int) -> None:
        """Writes in the steady window (resync on), then edits at idle reaching their StatefulSet."""
        say(f"steady window: {self.args.steady:.0f} s with resync every {self.args.resync:.0f} s")
        m0 = op.metrics()
        seconds, writes, own = await self.writes_during(lambda: asyncio.sleep(self.args.steady))
        m1 = op.metrics()
        self.m.counts["operator.steady_seconds"] = round(seconds)
        self.m.counts["operator.steady_writes"] = sum(writes.values()) - own
        self.m.counts["operator.steady_writes_by_resource"] = writes
        self.m.counts["operator.steady_own_writes"] = m1["writes"] - m0["writes"]
        self.m.counts["operator.steady_reconciles"] = m1["reconciles"] - m0["reconciles"]
        latencies = []
        for i in range(min(n, self.args.edits)):
            name = names(n)[i]
            value = f"edit-{i}"
            started = time.monotonic()
            await self.user.patch(
                MCPSERVER, namespace, name,
                {"spec": {"env": [{"name": "TRANSPORT", "value": "stdio"},
                                  {"name": "EDIT", "value": value}]}},
            )  # fmt: skip
            while True:
                sts = await self.user.get(STATEFULSET, namespace, f"{name}-server")
                env = sts["spec"]["template"]["spec"]["containers"][0].get("env") if sts else None
                if env and any(e.get("value") == value for e in env):
                    break
                await asyncio.sleep(0.005)
            latencies.append(time.monotonic() - started)
        latencies.sort()
        self.m.counts["operator.edit_p50_s"] = round(statistics.median(latencies), 4)
        self.m.counts["operator.edit_p99_s"] = round(
            latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 4
        )
        # The edited servers converge again (status observes their new generation) before the roll starts.
        await tracker.until(lambda: tracker.converged(n, 1), self.args.timeout)


def versions() -> str:
    parts = [f"Python {platform.python_version()}"]
    for dist in ("kubernetes_asyncio", "aiohttp", "pydantic", "prometheus_client"):
        with contextlib.suppress(importlib_metadata.PackageNotFoundError):
            parts.append(f"{dist} {importlib_metadata.version(dist)}")
    return ", ".join(parts) + ", kube-apiserver v1.20.2 + etcd on 127.0.0.1"


# ------------------------------------------------------------------------------ main


def start_cluster() -> tuple[str, bool]:
    hack = ROOT / "hack" / "cluster"
    status = subprocess.run([sys.executable, str(hack), "status"], capture_output=True, check=False)
    was_running = status.returncode == 0
    up = subprocess.run([sys.executable, str(hack), "up"], stdout=subprocess.PIPE, text=True, check=True)
    kubeconfig = up.stdout.strip().splitlines()[-1].split("=", 1)[1]
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "kubectl"), "--kubeconfig", kubeconfig, "apply", "--server-side",
         "--force-conflicts", "-f", str(ROOT / "manifests" / "crds")],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "kubectl"), "--kubeconfig", kubeconfig, "wait",
         "--for=condition=Established", "--timeout=60s", "-f", str(ROOT / "manifests" / "crds")],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return kubeconfig, not was_running


async def amain(args: argparse.Namespace) -> Bench:
    transport = await KubeTransport.from_kubeconfig(args.kubeconfig)
    user = KubeClient(transport, qps=0)
    bench = Bench(args, transport, user)
    try:
        for repeat in range(args.repeats):
            last = repeat == args.repeats - 1
            say(f"repeat {repeat + 1}/{args.repeats}, N = {args.n}")
            phases: list[Callable[[], Awaitable[None]]] = [functools.partial(bench.operator, args.n, last)]
            if not args.no_floor:
                phases[:0] = [functools.partial(bench.floor, c, args.n) for c in (16, 64)]
            # Each repeat starts with another phase: a phase that always ran last would always meet the
            # control plane after the others' churn (etcd history, compaction) and carry that bias.
            shift = repeat % len(phases)
            for phase in phases[shift:] + phases[:shift]:
                await phase()
    finally:
        await user.close()
    return bench


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1000, help="MCPServers per phase (default 1000)")
    parser.add_argument("--repeats", type=int, default=2, help="repeats; medians are reported (default 2)")
    parser.add_argument("--steady", type=float, default=300.0, help="steady window seconds (default 300)")
    parser.add_argument("--resync", type=float, default=60.0, help="operator --resync-period (default 60)")
    parser.add_argument("--workers", type=int, default=16, help="operator --workers (default 16)")
    parser.add_argument("--edits", type=int, default=50, help="idle edits timed for the p99 (default 50)")
    parser.add_argument("--timeout", type=float, default=900.0, help="convergence deadline seconds")
    parser.add_argument("--kubeconfig", help="use this cluster (CRDs installed) instead of hack/cluster")
    parser.add_argument("--no-floor", action="store_true", help="skip the bare-loop floor")
    parser.add_argument("--json", help="also write the results as JSON to this file")
    parser.add_argument(
        "--write-docs", action="store_true", help="update the operator section of docs/benchmarks.md"
    )
    parser.add_argument("--log", default="/tmp/bench_operator.log", help="operator log file")
    parser.add_argument("--profile", help="record the operator with py-spy (raw stacks) into this file")
    parser.add_argument("--merge", action="append", help="an earlier run's --json to take medians with")
    args = parser.parse_args()
    started_cluster = False
    if not args.kubeconfig:
        os.environ.setdefault("MCP_OPERATOR_CLUSTER", "bench")
        args.kubeconfig, started_cluster = start_cluster()
    try:
        # The floor runs on the operator's event loop (uvloop) and garbage collector settings, so
        # neither is counted as ours.
        tune_gc()
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            bench = runner.run(amain(args))
    finally:
        if started_cluster:
            subprocess.run([sys.executable, str(ROOT / "hack" / "cluster"), "down"], check=False)
    for earlier in args.merge or []:  # earlier runs' --json, for medians across separate invocations
        bench.m.merge(json.loads(Path(earlier).read_text()))
    run_line = f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC on {machine()}; {versions()}"
    text = report(bench.m, Settings.from_args(args), run_line)
    print(text)
    if args.json:
        Path(args.json).write_text(
            json.dumps({"results": bench.m.results, "counts": bench.m.counts}, indent=2)
        )
    if args.write_docs:
        notes = notes_of(DOC.read_text()) if DOC.exists() else ""
        write_section(MARK_START, MARK_END, section(text, notes), first=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
