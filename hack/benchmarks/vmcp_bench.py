"""``hack/bench_vmcp``: benchmark the virtual MCP gateway; writes the "Virtual MCP gateway" section of
docs/benchmarks.md.

Measured in one run on this machine, loopback only, with the mcp SDK client (modern era), medians of
N sequential requests after a warm-up:

1. aggregated ``tools/list`` through a gateway over 10 fixture backends vs. over 1 backend (the fixture
   answers ``ttlMs: 0``, so every front list fans out to every backend: the uncached worst case);
2. ``tools/call`` routing overhead: gateway hop vs. the proxy's hop (``mcp-operator proxy --target``),
   both over the same direct baseline.

Usage: hack/bench_vmcp [--requests N] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from hack.benchmarks.common import write_section
from hack.benchmarks.vmcp_report import BEGIN, END, render
from tests.support.gateway_processes import (
    BIN,
    fixture_server,
    free_port,
    get_json,
    start,
    wait_http,
    wait_until,
    write_config,
)


async def _median_ms(url: str, n: int, op: str) -> float:
    async with Client(url, mode="auto") as client:
        await client.list_tools()  # as real clients do; the SDK client re-lists unknown tools before calls
        samples = []
        for i in range(n + 10):
            t0 = time.perf_counter()
            if op == "list":
                await client.list_tools()
            else:
                await client.call_tool(op, {"message": "x"})
            if i >= 10:
                samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def _gateway(name: str, backends: dict[str, int], logdir: Path) -> tuple[str, object]:
    port = free_port()
    config = logdir / f"{name}.yaml"
    write_config(
        config,
        {
            "name": name,
            "backends": [{"name": b, "url": f"http://127.0.0.1:{p}/mcp"} for b, p in backends.items()],
        },
    )
    proc = start(
        name, [str(BIN / "mcp-operator"), "vmcp", "--port", str(port), "--config", str(config)], logdir
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/health", proc)
    wait_until(lambda: get_json(f"{url}/status")["phase"] == "Ready", timeout=120, what=f"{name} ready")
    return f"{url}/mcp", proc


def _measure(n: int, ttl_ms: int) -> dict[str, float]:
    """One set of backends answering ``ttlMs: ttl_ms``; gateways over 1 and 10 of them; a proxy over one."""
    tag = "uncached, backend ttlMs 0" if ttl_ms == 0 else f"cached, backend ttlMs {ttl_ms}"
    procs: list[Any] = []
    with tempfile.TemporaryDirectory() as tmp:
        logdir = Path(tmp)
        try:
            ports = {f"b{i}": free_port() for i in range(10)}
            for name, port in ports.items():
                procs.append(fixture_server(name, port, logdir, list_ttl_ms=ttl_ms))
            one_url, one = _gateway("gw1", {"b0": ports["b0"]}, logdir)
            ten_url, ten = _gateway("gw10", ports, logdir)
            procs += [one, ten]
            direct = f"http://127.0.0.1:{ports['b0']}/mcp"
            rows = {
                f"tools/list gateway, 1 backend ({tag})": anyio.run(_median_ms, one_url, n, "list"),
                f"tools/list gateway, 10 backends ({tag})": anyio.run(_median_ms, ten_url, n, "list"),
            }
            if ttl_ms:
                return rows
            proxy_port = free_port()
            argv = [str(BIN / "mcp-operator"), "proxy", "--port", str(proxy_port), "--target", direct]
            proxy = start("proxy", argv, logdir)
            procs.append(proxy)
            wait_http(f"http://127.0.0.1:{proxy_port}/health", proxy)
            rows |= {
                "tools/list direct (1 backend)": anyio.run(_median_ms, direct, n, "list"),
                "tools/call direct": anyio.run(_median_ms, direct, n, "echo"),
                "tools/call via proxy": anyio.run(
                    _median_ms, f"http://127.0.0.1:{proxy_port}/mcp", n, "echo"
                ),
                "tools/call via gateway (1 backend)": anyio.run(_median_ms, one_url, n, "b0_echo"),
                "tools/call via gateway (10 backends)": anyio.run(_median_ms, ten_url, n, "b0_echo"),
            }
            return rows
        finally:
            for proc in procs:
                proc.stop()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    n = args.requests
    rows: dict[str, float] = {}
    for ttl_ms in (0, 60_000):
        rows |= _measure(n, ttl_ms)
    load = Path("/proc/loadavg").read_text().split()[:3]
    machine_line = (
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"mcp {version('mcp')}; load average at the end: {' '.join(load)}."
    )
    text = render(rows, n, machine_line)
    print(text)
    if not args.no_write:
        write_section(BEGIN, END, f"{BEGIN}\n{text}\n{END}")
    return 0
