"""``hack/bench_replicas``: what Redis sessions and Redis rate limits cost the proxy.

Usage: ``hack/bench_replicas [--rounds R] [--calls N] [--clients C] [--per-client M] [--no-write]``.
Not a test: it measures, prints a table and rewrites its own section of ``docs/benchmarks.md``.

Three ``mcp-operator proxy`` processes, each in front of its own stdio fixture server (``echo``), all on
127.0.0.1 and measured in interleaved rounds so a load change hits them alike:

- ``memory``: ``sessionStorage.provider: memory`` (the default; the baseline);
- ``redis``: ``sessionStorage.provider: redis`` on one local ``redis-server``;
- ``redis + rate limit``: the same plus ``rateLimiting.shared`` with a limit never reached.

Latency: one SDK ``Client`` per proxy in the 2025-11-25 session era, ``--calls`` sequential
``tools/call``, p50 / p99. Throughput: ``--clients`` 2025-11-25 sessions per proxy, each driven by one
keep-alive connection of Node's HTTP client (``hack/loadgen.mjs``), all at once; calls per second.
Redis round trips per call: the proxy's ``mcp_redis_commands_total`` over the calls it served.

Then two replicas against one, each held to ``--cpu`` CPUs by a cgroup as a pod's CPU limit holds it
(``hack/benchmarks/replicas_scaling.py``, which says how; needs root for the cgroups).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2

from hack.benchmarks.common import free_port, load_average, write_section
from hack.benchmarks.proxy_bench import FIXTURE, latency, percentile, process
from hack.benchmarks.replicas_scaling import measure_scaling, parallel_loadgens, render_scaling
from tests.support.redis_server import RedisServer
from tests.support.replicas import metric_value

BEGIN, END = "<!-- bench_replicas:begin -->", "<!-- bench_replicas:end -->"
NAMES = ("memory", "redis", "redis + rate limit")
SESSION_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": "2025-11-25",
}
CALL = '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}'


def proxy_config(port: int, storage: dict[str, Any], limits: dict[str, Any] | None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "port": port,
        "backend": {"type": "stdio", "command": [sys.executable, str(FIXTURE)]},
        "sessionStorage": storage,
        "audit": {"enabled": False},
    }
    if limits is not None:
        config["rateLimiting"] = limits
    return config


@contextlib.contextmanager
def proxies(redis: RedisServer, workdir: Path) -> Iterator[dict[str, str]]:
    shared = {"provider": "redis", "address": redis.address}
    never = {"shared": {"maxTokens": 1_000_000_000, "refillPeriod": "1s"}}
    configs = {
        "memory": ({"provider": "memory"}, None),
        "redis": (shared, None),
        "redis + rate limit": (shared, never),
    }
    with contextlib.ExitStack() as stack:
        urls = {}
        for name, (storage, limits) in configs.items():
            port = free_port()
            path = workdir / f"{name.replace(' ', '-')}.json"
            path.write_text(json.dumps(proxy_config(port, storage, limits)))
            binary = str(Path(sys.executable).parent / "mcp-operator")
            stack.enter_context(
                process([binary, "proxy", "--config", str(path)], f"http://127.0.0.1:{port}/health", (200,))
            )
            urls[name] = f"http://127.0.0.1:{port}"
        yield urls


def open_session(url: str) -> str:
    params = {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "bench", "version": "0"},
    }
    with httpx2.Client(timeout=30) as http:
        opened = http.post(
            f"{url}/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params},
            headers=SESSION_HEADERS,
        )
        session = opened.headers["mcp-session-id"]
        headers = {**SESSION_HEADERS, "Mcp-Session-Id": session}
        http.post(
            f"{url}/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers
        )
    return str(session)


def throughput(url: str, sessions: list[str], per_client: int) -> float:
    """Calls per second of one keep-alive client per session, all at once (one request in flight per
    session: a session's request ids are its client's to keep unique)."""
    specs: list[dict[str, object]] = [
        {
            "url": f"{url}/mcp",
            "body": CALL,
            "headers": {**SESSION_HEADERS, "Mcp-Session-Id": session},
            "expect": '"text":"x"',
            "clients": 1,
            "perClient": per_client,
        }
        for session in sessions
    ]
    return parallel_loadgens(specs)


def redis_round_trips(url: str) -> float:
    return metric_value(httpx2.get(f"{url}/metrics", timeout=10).text, "mcp_redis_commands_total")


def measure(urls: dict[str, str], args: argparse.Namespace) -> dict[str, dict[str, float]]:
    targets = {name: f"{url}/mcp" for name, url in urls.items()}
    samples = anyio.run(latency, targets, "legacy", args.calls, args.rounds)
    sessions = {name: [open_session(url) for _ in range(args.clients)] for name, url in urls.items()}
    rates: dict[str, list[float]] = {name: [] for name in urls}
    for name, url in urls.items():
        throughput(url, sessions[name], 10)  # warm-up
    before = {name: redis_round_trips(url) for name, url in urls.items()}
    per_round = args.per_client // args.rounds
    for _ in range(args.rounds):
        for name, url in urls.items():
            rates[name].append(throughput(url, sessions[name], per_round))
    calls = args.clients * per_round * args.rounds
    return {
        name: {
            "p50": percentile(samples[name], 0.5),
            "p99": percentile(samples[name], 0.99),
            "rate": statistics.median(rates[name]),
            "trips": (redis_round_trips(url) - before[name]) / calls,
        }
        for name, url in urls.items()
    }


def render(
    results: dict[str, dict[str, float]], scaling: dict[str, float], args: argparse.Namespace, load: str
) -> str:
    base = results["memory"]
    rows = [
        f"| {name} | {r['p50']:.2f} | {r['p50'] - base['p50']:+.2f} | {r['p99']:.2f} | {r['rate']:.0f} | "
        f"**{r['rate'] / base['rate']:.2f}x** | {r['trips']:.2f} |"
        for name, r in results.items()
    ]
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            BEGIN,
            "## Several replicas: Redis sessions and rate limits (`hack/bench_replicas`)",
            "",
            f"One run, {when}, {platform.machine()} with {os.cpu_count()} cores shared with other work "
            f"(load average {load} at the start), Python {platform.python_version()}, "
            f"{args.rounds} interleaved rounds; latency over {args.calls} sequential session-era calls, "
            f"throughput from {args.clients} sessions per proxy, one keep-alive client each, "
            f"{args.per_client} calls each.",
            "",
            "| proxy | p50 ms | added p50 ms | p99 ms | calls/s | vs memory | Redis round trips per call |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            "A short run on a shared machine: differences of a few percent or below a millisecond are "
            "within its noise. "
            "Redis sessions add no round trip to a call on a session the pod already holds (the record is "
            "written once at `initialize` and its TTL refreshed at most every quarter of it); a rate-limited "
            "call makes exactly one (the Lua script).",
            *render_scaling(scaling, args),
            END,
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--per-client", type=int, default=300)
    parser.add_argument("--cpu", type=float, default=0.05, help="CPU quota of each replica (scaling)")
    parser.add_argument("--scaling-clients", type=int, default=16, help="clients (scaling)")
    parser.add_argument("--scaling-calls", type=int, default=80, help="calls per client per round (scaling)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    load = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        redis = RedisServer(Path(tmp))
        redis.start()
        try:
            with proxies(redis, Path(tmp)) as urls:
                results = measure(urls, args)
        finally:
            redis.stop()
    scaling = measure_scaling(args)
    block = render(results, scaling, args, load)
    print(block)
    if not args.no_write:
        write_section(BEGIN, END, block)
    return 0
