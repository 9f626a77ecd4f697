"""``hack/bench_proxy``: tools/call latency and throughput, direct vs our proxy vs fastmcp's proxy.

Usage: ``hack/bench_proxy [--runs R] [--calls N] [--clients C] [--per-client M] [--no-write]`` (from
the repo root, with the venv's python; ``make bench`` does that). Not a test: it measures, prints a table
and rewrites its own section of ``docs/benchmarks.md`` (between the ``bench_proxy`` markers; other
sections are kept).

Targets, all on 127.0.0.1, all serving the in-repo fixture server's ``echo`` tool:

- ``direct``: the fixture over streamable HTTP (the MCP SDK's server), no proxy;
- ``proxy (stdio)``: ``mcp-operator proxy -- python fixture`` (HTTP front, stdio backend);
- ``proxy (http)``: ``mcp-operator proxy --target`` the direct fixture (HTTP front, HTTP backend);
- ``fastmcp proxy (stdio)``: fastmcp's ``create_proxy`` over the same stdio command;
- ``proxy (stdio), fast path off``: our stdio proxy with every request on the SDK's server path
  (``build_proxy_app(fast_path=False)``), to show what the fast path changes.

All five run at once and are measured in ``--rounds`` interleaved rounds (medians over all rounds), so a
load change on a shared machine hits every target alike. Latency: one client per target, ``--calls``
sequential ``tools/call`` after 30 warm-up calls, per protocol era
(2026-07-28 and the 2025-11-25 session era) with the SDK's ``Client``; p50 / p99 in ms. Throughput:
``--clients`` keep-alive connections posting sessionless 2026-07-28 ``tools/call`` requests from Node's
HTTP client (``hack/loadgen.mjs``: the SDK client's or Python threads' own CPU would take the servers'
cores), ``--per-client`` calls each; calls
per second over the wall time, and the CPU time each server process (with its stdio child, for the
stdio rows) spent per call during the throughput rounds: unlike latency, CPU per call hardly depends on
what else the machine runs. Client, proxy and server share the machine, so absolute numbers are
machine-bound; the ratios are the point. The proxy's ``mcp_proxy_fast_path_requests_total`` is read at
the end to show how many ``/mcp`` requests its fast path served.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx2
from mcp import Client

from hack.benchmarks.common import ROOT, child_pids, cpu_seconds, free_port, run_line, write_section
from hack.benchmarks.proxy_report import BEGIN, END, NAMES, NODE_NAMES, Run, Settings, render

FIXTURE = ROOT / "tests" / "fixtures" / "mcp_fixture_server.py"
SERVING = (400, 405, 406)
"""What an MCP endpoint answers a bare GET with once it serves."""
SDK_PATH_PROXY = """
import sys
import uvicorn
from api.proxy_config import ProxyConfig
from gateway.proxy import build_proxy_app
from gateway.transports import describe_backend, transport_for
config = ProxyConfig.model_validate(
    {"port": int(sys.argv[1]), "backend": {"type": "stdio", "command": [sys.executable, sys.argv[2]]}}
)
app, _ = build_proxy_app(
    config, transport_for(config.backend), description=describe_backend(config.backend), fast_path=False
)
uvicorn.run(app, host="127.0.0.1", port=config.port, log_level="warning", access_log=False, lifespan="on")
"""
"""Our stdio proxy as ``mcp-operator proxy`` runs it, minus the fast path: every request on the SDK path."""
FASTMCP_PROXY = """
import sys
from fastmcp.client.transports import StdioTransport
from fastmcp.server import create_proxy
proxy = create_proxy(StdioTransport(sys.executable, [sys.argv[2]]), mode="auto")
proxy.run("http", host="127.0.0.1", port=int(sys.argv[1]), show_banner=False, log_level="warning")
"""


def wait_for(url: str, ok: tuple[int, ...], limit: float = 120.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx2.HTTPError):
            if httpx2.get(url, timeout=2).status_code in ok:
                return
        time.sleep(0.1)
    raise SystemExit(f"{url} did not come up within {limit:.0f}s")


@contextlib.contextmanager
def process(
    args: list[str],
    ready_url: str,
    ok: tuple[int, ...],
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
) -> Iterator[int]:
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        wait_for(ready_url, ok)
        yield proc.pid
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        proc.kill()  # still running after 10 s (a no-op once it has exited)
        proc.wait()


def cpu_with_children(pid: int) -> tuple[float, float]:
    """User + system CPU of a process and of its direct children (a stdio backend)."""
    return cpu_seconds(pid), sum(cpu_seconds(child) for child in child_pids(pid))


def fast_path_counts(base: str) -> dict[str, float]:
    """``mcp_proxy_fast_path_requests_total`` of one of our proxies, by route."""
    text = httpx2.get(f"{base}/metrics", timeout=10).text
    prefix = "mcp_proxy_fast_path_requests_total{"
    return {
        line.split('"')[1]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(prefix)
    }


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def latency(targets: dict[str, str], mode: str, calls: int, rounds: int) -> dict[str, list[float]]:
    """Sequential calls per target, interleaved in rounds so load drifts hit every target alike."""
    samples: dict[str, list[float]] = {name: [] for name in targets}
    async with contextlib.AsyncExitStack() as stack:
        clients = {
            name: await stack.enter_async_context(Client(url, mode=mode)) for name, url in targets.items()
        }
        for client in clients.values():
            for _ in range(30):
                await client.call_tool("echo", {"text": "warm"})
        for _ in range(rounds):
            for name, client in clients.items():
                for _ in range(calls // rounds):
                    start = time.perf_counter()
                    await client.call_tool("echo", {"text": "x"})
                    samples[name].append((time.perf_counter() - start) * 1000)
    return samples


CALL_BODY = (
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"},'
    b'"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",'
    b'"io.modelcontextprotocol/clientInfo":{"name":"bench","version":"0"},'
    b'"io.modelcontextprotocol/clientCapabilities":{}}}}'
)
CALL_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": "2026-07-28",
    "Mcp-Method": "tools/call",
    "Mcp-Name": "echo",
}


def throughput(
    url: str, clients: int, per_client: int, call: bytes = CALL_BODY, expect: bytes = b'"text":"x"'
) -> tuple[float, float]:
    """Sessionless 2026-07-28 ``tools/call`` POSTs from ``clients`` keep-alive connections: calls/s and the
    load generator's CPU per call (us).

    The load comes from Node's HTTP client (``hack/loadgen.mjs``), not the SDK client nor Python threads:
    the generator shares the 2 cores with the servers under test, and the cheaper it is the less it
    takes from them (Python's ``http.client`` in 8 threads cost several times more CPU per call).
    """
    spec = {
        "url": url,
        "body": call.decode(),
        "headers": CALL_HEADERS,
        "expect": expect.decode(),
        "clients": clients,
        "perClient": per_client,
    }
    done = subprocess.run(
        ["node", str(ROOT / "hack" / "loadgen.mjs"), json.dumps(spec)],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    result = json.loads(done.stdout)
    if result["errors"]:
        raise SystemExit(f"{url}: {result['errors']} failed calls, e.g. {result['firstError']}")
    return result["calls"] / result["seconds"], result["cpuUs"] / result["calls"]


def throughput_rounds(
    targets: dict[str, str],
    pids: dict[str, int],
    args: argparse.Namespace,
    call: bytes = CALL_BODY,
    expect: bytes = b'"text":"x"',
) -> dict[str, dict[str, float]]:
    """Per target: median calls/s over ``--rounds`` interleaved rounds (after a warm-up) and the CPU per
    call of its process and of its children (us)."""
    rates: dict[str, list[float]] = {name: [] for name in targets}
    loads: dict[str, list[float]] = {name: [] for name in targets}
    cpu: dict[str, list[float]] = {name: [0.0, 0.0] for name in targets}
    for url in targets.values():
        throughput(url, args.clients, 10, call, expect)  # warm-up
    per_round = args.per_client // args.rounds
    for _ in range(args.rounds):
        for name, url in targets.items():
            before = cpu_with_children(pids[name])
            rate, load = throughput(url, args.clients, per_round, call, expect)
            rates[name].append(rate)
            loads[name].append(load)
            after = cpu_with_children(pids[name])
            cpu[name][0] += after[0] - before[0]
            cpu[name][1] += after[1] - before[1]
    calls = args.clients * per_round * args.rounds
    return {
        name: {
            "rps": statistics.median(rates[name]),
            "cpu_us": sum(cpu[name]) / calls * 1e6,
            "own_us": cpu[name][0] / calls * 1e6,
            "child_us": cpu[name][1] / calls * 1e6,
            "load_us": statistics.median(loads[name]),
        }
        for name in targets
    }


def measure(
    targets: dict[str, str], pids: dict[str, int], args: argparse.Namespace
) -> list[dict[str, float | str]]:
    print("measuring latency (2026-07-28) ...", file=sys.stderr, flush=True)
    modern = anyio.run(latency, targets, "auto", args.calls, args.rounds)
    print("measuring latency (2025-11-25) ...", file=sys.stderr, flush=True)
    legacy = anyio.run(latency, targets, "legacy", args.calls, args.rounds)
    print("measuring throughput ...", file=sys.stderr, flush=True)
    rates = throughput_rounds(targets, pids, args)
    return [
        {
            "name": name,
            "p50": statistics.median(modern[name]),
            "p99": percentile(modern[name], 0.99),
            "lp50": statistics.median(legacy[name]),
            "lp99": percentile(legacy[name], 0.99),
            **rates[name],
        }
        for name in targets
    ]


NPM_BIN = ROOT / "tests" / "npm" / "node_modules" / ".bin"
EVERYTHING_CALL = CALL_BODY.replace(b'"arguments":{"text":"x"}', b'"arguments":{"message":"x"}')


def node_backend(args: argparse.Namespace) -> Run:
    """Throughput of both proxies in front of a stdio server that is not itself the bottleneck.

    The fixture is the SDK's Python stdio server, which spends about 1.1 ms of CPU per call on its own
    thread hops and saturates first; server-everything (Node, from tests/npm) answers its ``echo`` in a
    fraction of that, so calls/s here measure the proxies.
    """
    python = sys.executable
    everything = str(NPM_BIN / "mcp-server-everything")
    env = {**os.environ, "PATH": f"{NPM_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    ports = [free_port() for _ in NODE_NAMES]
    urls = [f"http://127.0.0.1:{port}/mcp" for port in ports]
    fastmcp = FASTMCP_PROXY.replace(
        "StdioTransport(sys.executable, [sys.argv[2]])", "StdioTransport(sys.argv[2], [])"
    )
    ours = [python, "-m", "controller.cli", "proxy", "--log-level", "warning", "--port", str(ports[0]), "--"]
    with contextlib.ExitStack() as stack:
        pids = [
            stack.enter_context(
                process([*ours, everything], f"http://127.0.0.1:{ports[0]}/readyz", (200,), env=env)
            ),
            stack.enter_context(
                process([python, "-c", fastmcp, str(ports[1]), everything], urls[1], SERVING, env=env)
            ),
        ]
        targets = dict(zip(NODE_NAMES, urls, strict=True))
        rates = throughput_rounds(
            targets, dict(zip(NODE_NAMES, pids, strict=True)), args, EVERYTHING_CALL, b"Echo: x"
        )
    return [{"name": name, **rates[name]} for name in NODE_NAMES]


def run_all(args: argparse.Namespace) -> Run:
    python = sys.executable
    ports = [free_port() for _ in range(5)]
    urls = [f"http://127.0.0.1:{port}/mcp" for port in ports]
    cli = [python, "-m", "controller.cli", "proxy", "--log-level", "warning"]
    with contextlib.ExitStack() as stack:
        pids = [
            stack.enter_context(
                process([python, str(FIXTURE), "streamable-http", str(ports[0])], urls[0], SERVING)
            )
        ]
        for port, backend in ((ports[1], ["--", python, str(FIXTURE)]), (ports[2], ["--target", urls[0]])):
            proxy = [*cli, "--port", str(port), *backend]
            pids.append(stack.enter_context(process(proxy, f"http://127.0.0.1:{port}/readyz", (200,))))
        pids.append(
            stack.enter_context(
                process([python, "-c", FASTMCP_PROXY, str(ports[3]), str(FIXTURE)], urls[3], SERVING)
            )
        )
        pids.append(
            stack.enter_context(
                process(
                    [python, "-c", SDK_PATH_PROXY, str(ports[4]), str(FIXTURE)],
                    f"http://127.0.0.1:{ports[4]}/readyz",
                    (200,),
                )
            )
        )
        results = measure(dict(zip(NAMES, urls, strict=True)), dict(zip(NAMES, pids, strict=True)), args)
        counts = fast_path_counts(f"http://127.0.0.1:{ports[1]}")
        results[1]["fast"] = counts.get("fast", 0.0)
        results[1]["sdk"] = counts.get("sdk", 0.0)
        return results


def parse_args(doc: str | None) -> argparse.Namespace:
    """The flags of the latency and throughput benchmarks (this one and ``hack/bench_vmcp``)."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n")[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--per-client", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds over the targets")
    parser.add_argument("--runs", type=int, default=3, help="runs, each with fresh processes (medians)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    return parser.parse_args()


def main() -> int:
    args = parse_args(__doc__)
    runs = []
    for index in range(args.runs):
        print(f"run {index + 1} of {args.runs} ...", file=sys.stderr, flush=True)
        runs.append(run_all(args) + node_backend(args))
    line = run_line(("mcp", "fastmcp", "uvicorn", "starlette", "anyio"))
    section = render(runs, Settings(args.calls, args.clients, args.per_client, args.rounds), line)
    print(section)
    if not args.no_write:
        write_section(BEGIN, END, section.rstrip("\n"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
