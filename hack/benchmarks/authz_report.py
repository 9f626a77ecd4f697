"""The authorization benchmark's section of docs/benchmarks.md, from its results (pure: no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BEGIN, END = "<!-- bench_authz:begin -->", "<!-- bench_authz:end -->"
SECTION = "## Authorization (hack/bench_authz)"


@dataclass(frozen=True)
class Results:
    decision_us: float
    """p50 of the authorization hook of one call, steady state (decisions cached)."""
    first_decision_us: float
    """p50 of the same for a decision not made before (a fresh engine per sample)."""
    list_us: float
    """p50 of filtering a 200-tool list, steady state."""
    first_list_us: float
    """p50 of the same for a principal's first listing."""
    off_rps: float
    on_rps: float
    off_request_us: float
    """p50 of the request policy's handling of a ``tools/call``, authorization off."""
    on_request_us: float
    """The same, authorization on."""


def render(results: Results, settings: Any, when: str) -> str:
    """The section's text with its markers; ``when`` says where it ran."""
    ratio = results.on_rps / results.off_rps if results.off_rps else float("nan")
    lines = [
        BEGIN,
        SECTION,
        "",
        f"Run {when}. 100 Cedar policies (96 group grants of named tools, a grant by annotation, a claim "
        "condition, a forbid by annotation, an anonymous grant), 200 tools, 50 principals. A short run on a "
        "shared machine (other work ran at the same time): compare ratios, not absolute numbers.",
        "",
        "| What | p50 |",
        "|---|---:|",
        f"| decision added to a `tools/call` (steady state: cached) | {results.decision_us:.1f} us |",
        f"| decision added to a `tools/call`, first time | {results.first_decision_us:.1f} us |",
        f"| `tools/list` of 200 tools filtered (steady state) | {results.list_us / 1000:.3f} ms |",
        f"| `tools/list` of 200 tools filtered, first listing | {results.first_list_us / 1000:.3f} ms |",
        "",
        f"- Proxy throughput with authorization on / off, same run, {settings.rounds} interleaved rounds of "
        f"{settings.clients} keep-alive connections (Node stdio backend, anonymous calls of `echo`): "
        f"**{ratio:.2f}** ({results.on_rps:.0f} / {results.off_rps:.0f} calls/s); target at least 0.85.",
        f"- The request policy's own handling of a `tools/call` (backend answer immediate, in process): "
        f"{results.off_request_us:.1f} us off, {results.on_request_us:.1f} us on: authorization adds "
        f"**{results.on_request_us - results.off_request_us:.1f} us** per call; the throughput ratio above "
        "moves by tens of percent between runs on the shared machine, this does not.",
        f"- Decision p50 with 100 policies: **{results.decision_us:.1f} us** steady state (target at most "
        f"50 us); a decision not cached costs {results.first_decision_us:.0f} us (one `cedarpy` call "
        "over the policies whose scope can match the principal).",
        f"- 200-tool list filtered in **{results.list_us / 1000:.3f} ms** steady state, "
        f"{results.first_list_us / 1000:.3f} ms the first time (target under 2 ms).",
        "",
        "Notes. A decision is a pure function of the policy set, the principal's claims the policies read, "
        "the item and the arguments the policies read, so it is cached per policy set; the first decision "
        "for a principal pays one engine call (build the request entities, Cedar's evaluation). Only the "
        "policies whose principal and action scopes can match are evaluated (a principal in 2 of 96 teams "
        "sees a handful of the 100), and list entries the policies cannot tell apart (same server, same "
        "annotation hints read, name not named by a policy) share one decision, so a first listing of 200 "
        "tools is one engine call over a few distinct entries.",
        END,
    ]
    return "\n".join(lines) + "\n"
