"""The virtual MCP gateway benchmark's section of docs/benchmarks.md, from its rows (pure: no I/O).

Rows are the medians in ms ``hack/bench_vmcp`` measured, by path (``tools/list gateway, 10 backends
(cached, backend ttlMs 60000)``, ``tools/call via proxy``, ...).
"""

from __future__ import annotations

BEGIN, END = "<!-- bench_vmcp:begin -->", "<!-- bench_vmcp:end -->"
SECTION = "## Virtual MCP gateway (hack/bench_vmcp)"
UNCACHED = "uncached, backend ttlMs 0"
CACHED = "cached, backend ttlMs 60000"


def ratios(rows: dict[str, float]) -> tuple[float, float, float, float]:
    """(10 / 1 backends list ratio cached, the same uncached, the gateway's and the proxy's added ms on a
    call over direct)."""
    list_ratio = (
        rows[f"tools/list gateway, 10 backends ({CACHED})"]
        / rows[f"tools/list gateway, 1 backend ({CACHED})"]
    )
    worst_ratio = (
        rows[f"tools/list gateway, 10 backends ({UNCACHED})"]
        / rows[f"tools/list gateway, 1 backend ({UNCACHED})"]
    )
    proxy_hop = rows["tools/call via proxy"] - rows["tools/call direct"]
    gateway_hop = rows["tools/call via gateway (10 backends)"] - rows["tools/call direct"]
    return list_ratio, worst_ratio, gateway_hop, proxy_hop


def render(rows: dict[str, float], n: int, machine_line: str) -> str:
    """The section's text (without its markers); ``machine_line`` says where and with which versions."""
    list_ratio, worst_ratio, gateway_hop, proxy_hop = ratios(rows)
    hop_ratio = gateway_hop / proxy_hop if proxy_hop > 0 else float("nan")
    lines = [
        SECTION,
        "",
        machine_line,
        f"Medians of {n} sequential requests (modern era, loopback) after 10 warm-ups; one run.",
        "",
        "| Path | p50 ms |",
        "|---|---|",
        *[f"| {k} | {v:.2f} |" for k, v in rows.items()],
        "",
        f"- Aggregated `tools/list`, 10 backends / 1 backend, backends caching (`ttlMs` 60 s, or legacy "
        f"backends with `defaultListTtl`): **{list_ratio:.2f}x** (target at most 1.5x).",
        f"- Same with `ttlMs: 0` (every front list fans out to all 10 backends in parallel): "
        f"**{worst_ratio:.2f}x**; on 2 cores the parallel requests share the CPU with the 10 backends.",
        f"- Routing overhead on `tools/call`: gateway hop **+{gateway_hop:.2f} ms** vs proxy hop "
        f"**+{proxy_hop:.2f} ms** over direct (ratio {hop_ratio:.2f}).",
        "",
    ]
    return "\n".join(lines)
