"""Two proxy replicas against one, each held to a CPU quota as a pod's CPU limit holds it.

On a 2-core machine shared with other work, two uncapped replicas only compete with the load generator,
their backends and each other for the same cores, so "replicas add capacity" cannot show. A pod with
``resources.limits.cpu`` runs in a cgroup with a CFS quota; here each replica process gets a cgroup of
its own with ``--cpu`` CPUs (cgroup v2 ``cpu.max``, or v1 ``cpu.cfs_quota_us``) and a high CPU weight
(the share a pod's CPU request reserves, so other work on the machine does not eat the quota), so one
replica is CPU-bound at a fraction of a core and two get twice the quota, as two pods would. The backends
(server-everything on Node, one per replica, started by the proxy over stdio) are moved back out of the
replica's cgroup, and the load generator (Node, ``hack/loadgen.mjs``) runs outside too: neither is
capped, so the proxies are the bottleneck. The cgroups are removed afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from hack.benchmarks.common import ROOT, child_pids, free_port
from hack.benchmarks.proxy_bench import CALL_HEADERS, EVERYTHING_CALL, NPM_BIN, process

CGROUP_ROOT = Path("/sys/fs/cgroup")
# Why a twentieth of a CPU and 16 clients: two replicas at that quota serve ~300 calls/s, which leaves
# room on 2 shared cores for the uncapped backends and load generator (at 0.1 CPU they, not the quota,
# began to limit two replicas); 8 clients per replica keep a capped proxy busy for its whole quota while
# some of its calls wait on the backend.
PERIOD_US = 100_000


class CpuCaps:
    """Cgroups with a CPU quota each, under one parent made for this run (removed by :meth:`close`)."""

    def __init__(self, cpus: float) -> None:
        v2 = CGROUP_ROOT / "cgroup.controllers"
        self.v2 = v2.exists() and "cpu" in v2.read_text().split()
        self.root = CGROUP_ROOT if self.v2 else CGROUP_ROOT / "cpu"
        if not (self.root / "cgroup.procs").exists():
            raise SystemExit(f"no CPU cgroup controller at {self.root}: cannot cap the replicas")
        self.parent = self.root / f"mcp-bench-{os.getpid()}"
        self.parent.mkdir()
        if self.v2:
            (self.parent / "cgroup.subtree_control").write_text("+cpu")
        self._weigh(self.parent)
        self.quota = int(cpus * PERIOD_US)
        self.groups: list[Path] = []

    def cap(self, name: str, pid: int) -> None:
        """Put process ``pid`` (and what it starts later) into a new cgroup with the quota."""
        group = self.parent / name
        group.mkdir()
        if self.v2:
            (group / "cpu.max").write_text(f"{self.quota} {PERIOD_US}")
        else:
            (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (group / "cpu.cfs_quota_us").write_text(str(self.quota))
        self._weigh(group)
        (group / "cgroup.procs").write_text(str(pid))
        self.groups.append(group)

    def _weigh(self, group: Path) -> None:
        """A weight ten times the default, as a pod's CPU request reserves its share of the node: the
        capped replicas get their quota even while other work keeps the cores busy."""
        if self.v2:
            (group / "cpu.weight").write_text("1000")
        else:
            (group / "cpu.shares").write_text("10240")

    def throttled(self) -> float:
        """The share of scheduler periods in which a capped process wanted more than its quota."""
        periods = throttled = 0
        for group in self.groups:
            stat = dict(line.split() for line in (group / "cpu.stat").read_text().splitlines() if " " in line)
            periods += int(stat.get("nr_periods", 0))
            throttled += int(stat.get("nr_throttled", 0))
        return throttled / periods if periods else 0.0

    def release(self, pid: int) -> None:
        """Move ``pid`` back to the root cgroup (uncapped)."""
        (self.root / "cgroup.procs").write_text(str(pid))

    def close(self) -> None:
        for group in [*self.groups, self.parent]:
            for pid in (group / "cgroup.procs").read_text().split():
                with contextlib.suppress(ProcessLookupError, OSError):
                    self.release(int(pid))
            group.rmdir()


def parallel_loadgens(specs: list[dict[str, object]]) -> float:
    """Calls per second of ``hack/loadgen.mjs`` runs (one per spec), all started at once."""
    command = ["node", str(ROOT / "hack" / "loadgen.mjs")]
    runs = [
        subprocess.Popen([*command, json.dumps(spec)], stdout=subprocess.PIPE, text=True) for spec in specs
    ]
    start = time.perf_counter()
    results = [json.loads(run.communicate(timeout=600)[0]) for run in runs]
    seconds = time.perf_counter() - start
    failed = [r for r in results if r["errors"]]
    if failed:
        raise SystemExit(f"{failed[0]['errors']} failed calls, e.g. {failed[0]['firstError']}")
    return float(sum(r["calls"] for r in results)) / seconds


def spread_throughput(urls: list[str], clients: int, per_client: int) -> float:
    """Calls per second of ``clients`` keep-alive clients (sessionless 2026-07-28 ``tools/call``) spread
    evenly over ``urls`` (what a Service does with connections), all at once."""
    specs: list[dict[str, object]] = [
        {
            "url": url,
            "body": EVERYTHING_CALL.decode(),
            "headers": CALL_HEADERS,
            "expect": "Echo: x",
            "clients": clients // len(urls) + (1 if i < clients % len(urls) else 0),
            "perClient": per_client,
        }
        for i, url in enumerate(urls)
    ]
    return parallel_loadgens(specs)


@contextlib.contextmanager
def capped_replicas(caps: CpuCaps, count: int) -> Iterator[list[str]]:
    """``count`` proxies, each in front of its own server-everything, each in its own capped cgroup."""
    everything = str(NPM_BIN / "mcp-server-everything")
    env = {**os.environ, "PATH": f"{NPM_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    binary = str(Path(sys.executable).parent / "mcp-operator")
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        urls = []
        for i in range(count):
            port = free_port()
            config = {
                "port": port,
                "backend": {"type": "stdio", "command": [everything]},
                "audit": {"enabled": False},
            }
            path = Path(tmp) / f"replica-{i}.json"
            path.write_text(json.dumps(config))
            argv = [binary, "proxy", "--log-level", "warning", "--config", str(path)]
            pid = stack.enter_context(process(argv, f"http://127.0.0.1:{port}/readyz", (200,), env=env))
            caps.cap(f"replica-{i}", pid)
            for backend in child_pids(pid):
                caps.release(backend)  # the backend is not what is measured
            urls.append(f"http://127.0.0.1:{port}/mcp")
        yield urls


def measure_scaling(args: argparse.Namespace) -> dict[str, float]:
    """calls/s of one capped replica and of two, in interleaved rounds (medians), and their ratio."""
    caps = CpuCaps(args.cpu)
    try:
        with capped_replicas(caps, 2) as urls:
            targets = {"one": urls[:1], "two": urls}
            spread_throughput(urls, args.scaling_clients, 20)  # warm-up: both backends' sessions open
            rates: dict[str, list[float]] = {name: [] for name in targets}
            for _ in range(args.rounds):
                for name, chosen in targets.items():
                    rates[name].append(spread_throughput(chosen, args.scaling_clients, args.scaling_calls))
            throttled = caps.throttled()
    finally:
        caps.close()
    one, two = statistics.median(rates["one"]), statistics.median(rates["two"])
    return {
        "cpu": args.cpu,
        "one": one,
        "two": two,
        "ratio": two / one,
        "v2": float(caps.v2),
        "throttled": throttled,
    }


def render_scaling(result: dict[str, float], args: argparse.Namespace) -> list[str]:
    cgroup = "v2 `cpu.max`" if result["v2"] else "v1 `cpu.cfs_quota_us`"
    cpu, throttled = result["cpu"], result["throttled"]
    return [
        "",
        f"### Two replicas against one, each capped at {result['cpu']:g} CPU",
        "",
        "| replicas | calls/s | vs one |",
        "|---|---:|---:|",
        f"| 1 | {result['one']:.0f} | 1.00x |",
        f"| 2 | {result['two']:.0f} | **{result['ratio']:.2f}x** |",
        "",
        f"How it was arranged on this machine: each replica process ran in a cgroup of its own with a "
        f"CPU quota of {cpu:g} CPU (cgroup {cgroup}, period 100 ms) and ten times the default CPU "
        f"weight, as a pod with CPU request and limit {int(cpu * 1000)}m runs; its backend "
        "(server-everything on Node, one per replica over stdio) was moved out of the cgroup and the "
        "load generator (Node, "
        f"{args.scaling_clients} keep-alive clients of sessionless 2026-07-28 `tools/call`, spread "
        "evenly over the replicas as a Service spreads connections) ran outside, so only the proxies "
        f"were held to their quota (throttled in {throttled:.0%} of the 100 ms periods in which they "
        f"ran). Medians of {args.rounds} interleaved rounds of {args.scaling_calls} calls per client. "
        "The acceptance asks for at least 1.6x; what two replicas miss of 2x is the cores the uncapped "
        "backends and load generator share with the capped replicas and with the other work on the "
        "machine.",
    ]
