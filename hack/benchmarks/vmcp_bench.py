"""``hack/bench_vmcp``: the virtual MCP gateway's hop measured the way the proxy's is, in the same run.

Usage: ``hack/bench_vmcp [--runs R] [--calls N] [--clients C] [--per-client M] [--rounds K]
[--no-write]`` (from the repo root, with the venv's python; ``make bench BENCH=vmcp`` does that). Not a
test: it measures, prints a table and rewrites its own section of ``docs/benchmarks.md`` (between the
``bench_vmcp`` markers).

Targets, all on 127.0.0.1, all serving the in-repo fixture server's ``echo`` tool under that name:

- ``direct``: fixture server ``b0`` over streamable HTTP (the MCP SDK's server), no hop;
- ``proxy, stdio backend``: ``mcp-operator proxy -- python fixture`` (the proxy benchmark's headline row);
- ``gateway, 1 backend`` and ``gateway, 10 backends``: ``mcp-operator vmcp`` over ``b0`` and over ``b0``
  to ``b9`` (ten fixture servers), ``priority`` conflict resolution so ``b0``'s ``echo`` keeps its name;
- ``gateway, 1 backend, fast path off``: the same gateway with every request on the SDK's server path
  (``build_vmcp_app(fast_path=False)``);
- ``fastmcp create_proxy, HTTP backend``: fastmcp's proxy in front of ``b0``.

Latency (both eras, SDK ``Client``) and throughput (Node keep-alive load generator, sessionless 2026-07-28
calls) come from the proxy benchmark's own functions, interleaved in rounds over all targets. Then
``tools/list`` through the two fast gateways: the merged list of 10 backends against 1, both answered from
the gateway's cache. Every figure is the median over ``--runs`` runs (fresh processes each) of each run's
median; the ratios are the point (client, gateways and servers share the machine).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
import yaml
from mcp import Client

from hack.benchmarks.common import free_port, run_line, write_section
from hack.benchmarks.proxy_bench import (
    FIXTURE,
    SERVING,
    fast_path_counts,
    latency,
    parse_args,
    percentile,
    process,
    throughput_rounds,
)
from hack.benchmarks.proxy_report import Settings
from hack.benchmarks.vmcp_report import BEGIN, END, NAMES, Run, render
from tests.support.gateway_processes import SDK_PATH_GATEWAY

BACKENDS = 10
FASTMCP_HTTP_PROXY = """
import sys
from fastmcp.server import create_proxy
proxy = create_proxy(sys.argv[2], mode="auto")
proxy.run("http", host="127.0.0.1", port=int(sys.argv[1]), show_banner=False, log_level="warning")
"""


def gateway_config(path: Path, backends: dict[str, str]) -> Path:
    """A gateway config over ``backends`` (name -> URL) where the first backend's tools keep their names."""
    names = list(backends)
    config = {
        "name": f"bench-{len(names)}",
        "backends": [{"name": n, "url": u} for n, u in backends.items()],
        "aggregation": {
            "conflictResolution": "priority",
            "conflictResolutionConfig": {"priorityOrder": names},
        },
    }
    path.write_text(yaml.safe_dump(config))
    return path


async def list_latency(urls: dict[str, str], calls: int, rounds: int) -> dict[str, list[float]]:
    """Sequential ``tools/list`` per gateway (2026-07-28), interleaved in rounds."""
    samples: dict[str, list[float]] = {name: [] for name in urls}
    async with contextlib.AsyncExitStack() as stack:
        clients = {name: await stack.enter_async_context(Client(url)) for name, url in urls.items()}
        for client in clients.values():
            for _ in range(30):
                await client.list_tools()
        for _ in range(rounds):
            for name, client in clients.items():
                for _ in range(calls // rounds):
                    start = time.perf_counter()
                    await client.list_tools()
                    samples[name].append((time.perf_counter() - start) * 1000)
    return samples


def run_once(args: argparse.Namespace) -> Run:
    python = sys.executable
    cli = [python, "-m", "controller.cli"]
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        ports = {f"b{i}": free_port() for i in range(BACKENDS)}
        backends = {name: f"http://127.0.0.1:{port}/mcp" for name, port in ports.items()}
        pids: dict[str, int] = {}
        cached = {**os.environ, "MCP_FIXTURE_LIST_TTL_MS": "60000"}  # lists the gateway may cache
        for name, port in ports.items():
            argv = [python, str(FIXTURE), "streamable-http", str(port)]
            pid = stack.enter_context(process(argv, backends[name], SERVING, env=cached))
            if name == "b0":
                pids[NAMES[0]] = pid
        one = gateway_config(Path(tmp) / "one.yaml", {"b0": backends["b0"]})
        ten = gateway_config(Path(tmp) / "ten.yaml", backends)
        urls = {NAMES[0]: backends["b0"]}
        launches = {
            NAMES[1]: [
                *cli,
                "proxy",
                "--log-level",
                "warning",
                "--port",
                "{port}",
                "--",
                python,
                str(FIXTURE),
            ],
            NAMES[2]: [*cli, "vmcp", "--log-level", "warning", "--port", "{port}", "--config", str(one)],
            NAMES[3]: [*cli, "vmcp", "--log-level", "warning", "--port", "{port}", "--config", str(ten)],
            NAMES[4]: [python, "-c", SDK_PATH_GATEWAY, "{port}", str(one)],
            NAMES[5]: [python, "-c", FASTMCP_HTTP_PROXY, "{port}", backends["b0"]],
        }
        for name, template in launches.items():
            port = free_port()
            argv = [a.replace("{port}", str(port)) for a in template]
            base = f"http://127.0.0.1:{port}"
            ready = (f"{base}/readyz", (200,)) if name != NAMES[5] else (f"{base}/mcp", SERVING)
            pids[name] = stack.enter_context(process(argv, *ready))
            urls[name] = f"{base}/mcp"
        print("measuring latency (2026-07-28) ...", file=sys.stderr, flush=True)
        modern = anyio.run(latency, urls, "auto", args.calls, args.rounds)
        print("measuring latency (2025-11-25) ...", file=sys.stderr, flush=True)
        legacy = anyio.run(latency, urls, "legacy", args.calls, args.rounds)
        print("measuring throughput ...", file=sys.stderr, flush=True)
        rates = throughput_rounds(urls, pids, args)
        print("measuring tools/list ...", file=sys.stderr, flush=True)
        lists = anyio.run(list_latency, {n: urls[n] for n in NAMES[2:4]}, args.calls, args.rounds)
        counts = fast_path_counts(urls[NAMES[2]].removesuffix("/mcp"))
    rows: Run = []
    for name in NAMES:
        row: dict[str, float | str] = {
            "name": name,
            "p50": statistics.median(modern[name]),
            "p99": percentile(modern[name], 0.99),
            "lp50": statistics.median(legacy[name]),
            "lp99": percentile(legacy[name], 0.99),
            **rates[name],
        }
        if name in lists:
            row["list_p50"] = statistics.median(lists[name])
        if name == NAMES[2]:
            row["fast"], row["sdk"] = counts.get("fast", 0.0), counts.get("sdk", 0.0)
        rows.append(row)
    return rows


def main() -> int:
    args = parse_args(__doc__)
    runs = []
    for index in range(args.runs):
        print(f"run {index + 1} of {args.runs} ...", file=sys.stderr, flush=True)
        runs.append(run_once(args))
    line = run_line(("mcp", "fastmcp", "uvicorn", "httpx2"))
    section = render(runs, Settings(args.calls, args.clients, args.per_client, args.rounds), line)
    print(section)
    if not args.no_write:
        write_section(BEGIN, END, section.rstrip("\n"))
    return 0
