"""The real-pod benchmark's section of docs/benchmarks.md, from its runs (pure: no I/O).

Runs are what ``hack/bench_pods`` measured, one value per run and measurement: seconds from
``kubectl apply`` of an MCPServer to its Ready condition with the pods running, and the median
``tools/call`` latency in ms through the MCPServer's Service (the proxy) and straight to the server pod.
"""

from __future__ import annotations

import statistics

BEGIN, END = "<!-- bench_pods:begin -->", "<!-- bench_pods:end -->"
SECTION = "## MCPServers in real pods (hack/bench_pods)"
READY_STDIO = "apply to Ready, stdio server (s)"
READY_HTTP = "apply to Ready, streamable-HTTP server (s)"
VIA_SERVICE = "tools/call p50 via the Service ClusterIP (proxy) (ms)"
DIRECT = "tools/call p50 direct to the server pod IP (ms)"
MEASUREMENTS = (READY_STDIO, READY_HTTP, VIA_SERVICE, DIRECT)


def medians(runs: dict[str, list[float]]) -> dict[str, float]:
    """The median over the runs of each measurement."""
    return {name: statistics.median(runs[name]) for name in MEASUREMENTS}


def added_ms(runs: dict[str, list[float]]) -> float:
    """What the proxy and the Service add to a call: median via the Service minus median direct."""
    found = medians(runs)
    return found[VIA_SERVICE] - found[DIRECT]


def render(runs: dict[str, list[float]], calls: int, machine_line: str) -> str:
    """The section's text (without its markers); ``machine_line`` says where and with which versions."""
    found = medians(runs)
    count = len(runs[READY_STDIO])
    lines = [
        SECTION,
        "",
        machine_line,
        f"{count} runs; each run applies each MCPServer in a fresh namespace (local images, already on the "
        f"node) and makes {calls} sequential `tools/call` (modern era, `echo` of server-everything) after "
        "10 warm-ups on each path, from the host. Medians over the runs, with the range.",
        "",
        "| Measurement | median | min | max |",
        "|---|---|---|---|",
        *[
            f"| {name} | {found[name]:.2f} | {min(runs[name]):.2f} | {max(runs[name]):.2f} |"
            for name in MEASUREMENTS
        ],
        "",
        f"- The proxy pod and the Service (kube-proxy's iptables rules) add **+{added_ms(runs):.2f} ms** to "
        "a `tools/call` over calling the server pod directly.",
        "- Apply to Ready covers scheduling, two pods (the proxy and the server) starting, the proxy's "
        "readiness and the operator's status write.",
        "- Run with `make bench BENCH=pods` (on the local node of `hack/cluster up --node`, instance "
        "`MCP_OPERATOR_CLUSTER`, default `e2e`; not part of the default `make bench`).",
        "",
    ]
    return "\n".join(lines)
