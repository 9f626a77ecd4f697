"""``hack/bench_tracing``: the proxy's throughput with OpenTelemetry off, with the OTLP metrics export on and
with tracing at 100% sampling, against the proxy of the last commit before tracing, in one run.

Usage: ``hack/bench_tracing [--clients C] [--per-client M] [--rounds R] [--no-pre-tracing] [--no-write]``.
Not a test: it measures, prints a table and rewrites its section of ``docs/benchmarks.md`` (between the
``bench_tracing`` markers).

Targets, all ``mcp-operator proxy`` in front of the same Node stdio server (``server-everything``, which
is not the bottleneck, see the proxy section), measured in interleaved rounds like ``hack/bench_proxy``
(sessionless 2026-07-28 ``tools/call`` POSTs from ``hack/loadgen.mjs``; each POST takes the fast path):

- ``pre-tracing``: the proxy of the parent of the commit that added ``gateway/tracing.py``, from a
  temporary ``git worktree`` of that commit (removed afterwards), run with this venv;
- ``tracing off``: this checkout, no ``OTEL_*`` variable (no exporter, no thread; the hooks' one boolean
  check);
- ``metrics export``: ``OTEL_EXPORTER_OTLP_ENDPOINT`` at an OTLP/HTTP sink in this process,
  ``OTEL_TRACES_EXPORTER=none`` and ``OTEL_METRIC_EXPORT_INTERVAL=1000`` (an export every second, 60 times
  the default, so that a short run sees its cost);
- ``tracing 100%``: the sink and ``OTEL_TRACES_SAMPLER_ARG=1`` (every call makes two spans, all exported;
  the metrics export runs too, at its default minute).

The sink reads each export and answers 200 without decoding it: a stand-in for a collector.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2

from hack.benchmarks.common import ROOT, free_port, load_average, machine, publish
from hack.benchmarks.proxy_bench import EVERYTHING_CALL, NPM_BIN, process, throughput_rounds

BEGIN, END = "<!-- bench_tracing:begin -->", "<!-- bench_tracing:end -->"
PRE, OFF, METRICS, ON = "pre-tracing", "tracing off", "metrics export", "tracing 100%"
Counts = dict[str, dict[str, int]]


@contextlib.contextmanager
def otlp_sink() -> Iterator[tuple[str, Counts]]:
    """An OTLP/HTTP endpoint that takes every export: (base URL, exports and bytes per signal path)."""
    counts: Counts = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            size = int(self.headers.get("content-length", "0"))
            self.rfile.read(size)
            path = counts.setdefault(self.path, {"exports": 0, "bytes": 0})
            path["exports"] += 1
            path["bytes"] += size
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", counts
    finally:
        server.shutdown()
        server.server_close()


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()


@contextlib.contextmanager
def pre_tracing_checkout() -> Iterator[tuple[str, Path]]:
    """A temporary worktree of the last commit before tracing (the parent of the commit that added
    ``gateway/tracing.py``): (short commit, path); removed on exit."""
    added = _git("log", "--diff-filter=A", "--format=%H", "--", "gateway/tracing.py").split()[-1]
    commit = _git("rev-parse", f"{added}^")
    with tempfile.TemporaryDirectory(prefix="bench-pre-tracing-") as parent:
        path = Path(parent) / "checkout"
        _git("worktree", "add", "--detach", str(path), commit)
        try:
            probe = [sys.executable, "-c", "import gateway; print(gateway.__file__)"]
            found = subprocess.run(probe, cwd=path, check=True, capture_output=True, text=True).stdout
            assert found.startswith(str(path)), f"the checkout's proxy would not run: {found}"
            yield commit[:7], path
        finally:
            _git("worktree", "remove", "--force", str(path))


def counts_of(url: str, prefix: str) -> dict[str, float]:
    """A proxy's /metrics samples whose name starts with ``prefix``."""
    text = httpx2.get(url.replace("/mcp", "/metrics"), timeout=10).text
    return {
        line.split(" ")[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(prefix)
    }


def run(args: argparse.Namespace) -> tuple[dict[str, dict[str, float]], dict[str, float], Counts, str]:
    python = sys.executable
    everything = str(NPM_BIN / "mcp-server-everything")
    base_env = {**os.environ, "PATH": f"{NPM_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    base_env = {k: v for k, v in base_env.items() if not k.startswith("OTEL_")}
    with contextlib.ExitStack() as stack:
        endpoint, sink = stack.enter_context(otlp_sink())
        targets: dict[str, tuple[dict[str, str], Path]] = {}
        pre = "not measured (--no-pre-tracing)"
        if not args.no_pre_tracing:
            commit, checkout = stack.enter_context(pre_tracing_checkout())
            pre = commit
            targets[PRE] = ({"PYTHONPATH": str(checkout)}, checkout)
        targets[OFF] = ({}, ROOT)
        metrics_env = {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRIC_EXPORT_INTERVAL": "1000"}
        targets[METRICS] = ({"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, **metrics_env}, ROOT)
        targets[ON] = ({"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_TRACES_SAMPLER_ARG": "1"}, ROOT)
        ports = {name: free_port() for name in targets}
        urls = {name: f"http://127.0.0.1:{port}/mcp" for name, port in ports.items()}
        pids = {}
        for name, (env, cwd) in targets.items():
            argv = [python, "-m", "controller.cli", "proxy", "--log-level", "warning"]
            argv += ["--port", str(ports[name]), "--", everything]
            ready = f"http://127.0.0.1:{ports[name]}/readyz"
            pids[name] = stack.enter_context(process(argv, ready, (200,), env=base_env | env, cwd=cwd))
        rates = throughput_rounds(urls, pids, args, EVERYTHING_CALL, b"Echo: x")
        exported = counts_of(urls[ON], "mcp_tracing_spans_") | counts_of(urls[METRICS], "mcp_metrics_points_")
    return rates, exported, sink, pre


def _notes(
    rates: dict[str, dict[str, float]], exported: dict[str, float], sink: Counts, pre: str
) -> list[str]:
    def ratio(a: str, b: str) -> float:
        return rates[a]["rps"] / rates[b]["rps"]

    spans = exported.get("mcp_tracing_spans_exported_total", 0)
    dropped = sum(v for k, v in exported.items() if "_dropped_total" in k)
    traces, metrics = sink.get("/v1/traces", {}), sink.get("/v1/metrics", {})
    kib = metrics.get("bytes", 0) / max(metrics.get("exports", 1), 1) / 1024
    notes = []
    if PRE in rates:
        notes.append(
            f"- Tracing off / the proxy before tracing (commit `{pre}`): **{ratio(OFF, PRE):.3f}** "
            "(target within 2%)."
        )
    notes += [
        f"- Metrics export every second / tracing off: **{ratio(METRICS, OFF):.3f}**; proxy CPU per call "
        f"{rates[METRICS]['own_us']:.0f} us vs {rates[OFF]['own_us']:.0f} us.",
        f"- Tracing at 100% / tracing off: **{ratio(ON, OFF):.2f}** (target at least 0.85); proxy CPU "
        f"per call +{rates[ON]['own_us'] - rates[OFF]['own_us']:.0f} us for two spans, their context and "
        "export.",
        f"- Exported: {spans:.0f} spans in {traces.get('exports', 0)} OTLP requests, "
        f"{exported.get('mcp_metrics_points_exported_total', 0):.0f} metric points in "
        f"{metrics.get('exports', 0)} requests of {kib:.1f} KiB; {dropped:.0f} dropped.",
    ]
    return notes


def render(
    rates: dict[str, dict[str, float]], exported: dict[str, float], sink: Counts, pre: str, line: str
) -> str:
    rows = "\n".join(
        f"| {name} | {r['rps']:.0f} | {r['own_us']:.0f} | {r['child_us']:.0f} |" for name, r in rates.items()
    )
    return (
        f"{BEGIN}\n## OpenTelemetry cost in the proxy (`hack/bench_tracing`)\n\n{line}\n\n"
        "| Proxy | calls/s | proxy CPU us/call | Node child CPU us/call |\n|---|---:|---:|---:|\n"
        f"{rows}\n\n" + "\n".join(_notes(rates, exported, sink, pre)) + "\n\nNotes. The OTLP sink runs in "
        "the benchmark's process on the same 2 cores (a real collector would run elsewhere); the export "
        "threads' work is in the exporting proxies' CPU. The pre-tracing proxy runs from a temporary git "
        "worktree of that commit with the same venv. The machine is shared, so the run is short: compare "
        "the ratios, not absolute numbers.\n"
        f"{END}\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--per-client", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds over the targets")
    parser.add_argument(
        "--no-pre-tracing", action="store_true", help="skip the proxy of the last commit before tracing"
    )
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    started = load_average()
    rates, exported, sink, pre = run(args)
    setup = (
        f"{args.clients} keep-alive connections x {args.per_client} calls per target in {args.rounds} "
        f"interleaved rounds (medians); load average {started} at the start"
    )
    line = f"Run {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC on {machine()}; Python "
    section = render(rates, exported, sink, pre, f"{line}{platform.python_version()}; {setup}.")
    return publish(BEGIN, END, section, write=not args.no_write)


if __name__ == "__main__":
    sys.exit(main())
