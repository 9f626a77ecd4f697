"""``hack/bench_tracing``: the proxy's throughput with tracing at 100% sampling vs tracing off, in one run.

Usage: ``hack/bench_tracing [--clients C] [--per-client M] [--rounds R] [--baseline BIN] [--no-write]``.
Not a test: it measures, prints a table and rewrites its section of ``docs/benchmarks.md`` (between the
``bench_tracing`` markers).

Targets, all ``mcp-operator proxy`` in front of the same Node stdio server (``server-everything``, which
is not the bottleneck, see the proxy section), measured in interleaved rounds like ``hack/bench_proxy``
(sessionless 2026-07-28 ``tools/call`` POSTs from ``hack/loadgen.mjs``; each POST takes the fast path):

- ``tracing off``: no ``OTEL_*`` variable (no provider, no thread; the hooks' one boolean check);
- ``tracing 100%``: ``OTEL_EXPORTER_OTLP_ENDPOINT`` at an OTLP/HTTP sink in this process (it reads each
  export and answers 200 without decoding it: a stand-in for a collector), ``OTEL_TRACES_SAMPLER_ARG=1``;
  every call makes two spans (the request, the backend hop), all exported;
- ``--baseline BIN`` adds ``BIN proxy`` (e.g. the ``mcp-operator`` of a build without tracing) to compare
  tracing off against.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx2

from hack.benchmarks.common import free_port, machine, publish
from hack.benchmarks.proxy_bench import EVERYTHING_CALL, NPM_BIN, process, throughput_rounds

BEGIN, END = "<!-- bench_tracing:begin -->", "<!-- bench_tracing:end -->"
OFF, ON, BASELINE = "tracing off", "tracing 100%", "baseline (--baseline)"


@contextlib.contextmanager
def otlp_sink() -> Iterator[tuple[str, dict[str, int]]]:
    """An OTLP/HTTP endpoint that takes every export: (base URL, counts of exports and bytes)."""
    counts = {"exports": 0, "bytes": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            size = int(self.headers.get("content-length", "0"))
            self.rfile.read(size)
            counts["exports"] += 1
            counts["bytes"] += size
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


def tracing_counts(url: str) -> dict[str, float]:
    """The proxy's ``mcp_tracing_spans_*_total`` samples (empty with tracing off)."""
    text = httpx2.get(url.replace("/mcp", "/metrics"), timeout=10).text
    return {
        line.split(" ")[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("mcp_tracing_spans_")
    }


def run(args: argparse.Namespace) -> tuple[dict[str, dict[str, float]], dict[str, float], dict[str, int]]:
    python = sys.executable
    everything = str(NPM_BIN / "mcp-server-everything")
    base_env = {**os.environ, "PATH": f"{NPM_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    base_env = {k: v for k, v in base_env.items() if not k.startswith("OTEL_")}
    commands = {OFF: [python, "-m", "controller.cli"], ON: [python, "-m", "controller.cli"]}
    if args.baseline:
        commands[BASELINE] = [args.baseline]
    ports = {name: free_port() for name in commands}
    urls = {name: f"http://127.0.0.1:{port}/mcp" for name, port in ports.items()}
    with otlp_sink() as (endpoint, sink), contextlib.ExitStack() as stack:
        pids = {}
        for name, command in commands.items():
            env = dict(base_env)
            if name == ON:
                env |= {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_TRACES_SAMPLER_ARG": "1"}
            argv = [*command, "proxy", "--log-level", "warning", "--port", str(ports[name]), "--", everything]
            ready = f"http://127.0.0.1:{ports[name]}/readyz"
            pids[name] = stack.enter_context(process(argv, ready, (200,), env=env))
        rates = throughput_rounds(urls, pids, args, EVERYTHING_CALL, b"Echo: x")
        spans = tracing_counts(urls[ON])
    return rates, spans, sink


def render(
    rates: dict[str, dict[str, float]], spans: dict[str, float], sink: dict[str, int], line: str
) -> str:
    rows = "\n".join(
        f"| {name} | {r['rps']:.0f} | {r['own_us']:.0f} | {r['child_us']:.0f} |" for name, r in rates.items()
    )
    ratio = rates[ON]["rps"] / rates[OFF]["rps"]
    exported = spans.get("mcp_tracing_spans_exported_total", 0)
    dropped = sum(v for k, v in spans.items() if k.startswith("mcp_tracing_spans_dropped_total"))
    notes = [
        f"- Throughput with tracing at 100% / tracing off: **{ratio:.2f}** (target at least 0.85).",
        f"- Proxy CPU per call: {rates[OFF]['own_us']:.0f} us off, {rates[ON]['own_us']:.0f} us at 100% "
        f"(+{rates[ON]['own_us'] - rates[OFF]['own_us']:.0f} us for two spans, their context and export).",
        f"- Spans exported by the traced proxy: {exported:.0f} ({dropped:.0f} dropped) in {sink['exports']} "
        f"OTLP requests of {sink['bytes'] / max(sink['exports'], 1) / 1024:.0f} KiB on average.",
    ]
    if BASELINE in rates:
        notes.append(
            f"- Tracing off / the baseline build: **{rates[OFF]['rps'] / rates[BASELINE]['rps']:.3f}** "
            "(target within 2%)."
        )
    return (
        f"{BEGIN}\n## Tracing cost in the proxy (`hack/bench_tracing`)\n\n{line}\n\n"
        "| Proxy | calls/s | proxy CPU us/call | Node child CPU us/call |\n|---|---:|---:|---:|\n"
        f"{rows}\n\n" + "\n".join(notes) + "\n\nNotes. The OTLP sink runs in the benchmark's process on the "
        "same 2 cores (a real collector would run elsewhere); the export thread's work is in the traced "
        "proxy's CPU. The machine is shared, so the run is short: compare the ratio, not absolute numbers.\n"
        f"{END}\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--per-client", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds over the targets")
    parser.add_argument("--baseline", help="another mcp-operator executable to compare tracing off with")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    rates, spans, sink = run(args)
    setup = (
        f"{args.clients} keep-alive connections x {args.per_client} calls per target in {args.rounds} "
        "interleaved rounds (medians)"
    )
    line = f"Run {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC on {machine()}; Python "
    section = render(rates, spans, sink, f"{line}{platform.python_version()}; {setup}.")
    return publish(BEGIN, END, section, write=not args.no_write)


if __name__ == "__main__":
    sys.exit(main())
