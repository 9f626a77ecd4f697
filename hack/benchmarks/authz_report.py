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
    gateway_off_rps: float
    gateway_on_rps: float
    cpu_us: dict[str, float]
    """CPU per call of each throughput target's own process (``proxy off``, ``proxy on``, ``gateway
    off``, ``gateway on``; not its backend's), in microseconds."""


DECISION_TARGET_US = 50.0
THROUGHPUT_TARGET = 0.85
LIST_TARGET_MS = 2.0


def _met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def _ratio(on: float, off: float) -> float:
    return on / off if off else float("nan")


def _cpu(results: Results, kind: str) -> str:
    off, on = results.cpu_us[f"{kind} off"], results.cpu_us[f"{kind} on"]
    return f"; its CPU per call {off:.0f} / {on:.0f} us off / on: {_ratio(off, on):.2f}"


def render(results: Results, settings: Any, when: str) -> str:
    """The section's text with its markers; ``when`` says where it ran."""
    proxy = _ratio(results.on_rps, results.off_rps)
    gateway = _ratio(results.gateway_on_rps, results.gateway_off_rps)
    first_list_ms = results.first_list_us / 1000
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
        f"| `tools/list` of 200 tools filtered, first listing | {first_list_ms:.3f} ms |",
        "",
        "| Target (issue acceptance) | Measured | |",
        "|---|---|---|",
        f"| a decision adds at most {DECISION_TARGET_US:.0f} us p50 with 100 policies | "
        f"{results.decision_us:.1f} us | {_met(results.decision_us <= DECISION_TARGET_US)} |",
        f"| proxy throughput with authorization on at least {THROUGHPUT_TARGET:.0%} of off | "
        f"{proxy:.2f} ({results.on_rps:.0f} / {results.off_rps:.0f} calls/s{_cpu(results, 'proxy')}) | "
        f"{_met(proxy >= THROUGHPUT_TARGET)} |",
        f"| gateway throughput with authorization on at least {THROUGHPUT_TARGET:.0%} of off | "
        f"{gateway:.2f} ({results.gateway_on_rps:.0f} / {results.gateway_off_rps:.0f} calls/s"
        f"{_cpu(results, 'gateway')}) | "
        f"{_met(gateway >= THROUGHPUT_TARGET)} |",
        f"| a `tools/list` of 200 tools filtered in under {LIST_TARGET_MS:.0f} ms (first listing, the "
        f"worst case) | {first_list_ms:.3f} ms | {_met(first_list_ms < LIST_TARGET_MS)} |",
        "",
        f"- Throughput: {settings.rounds} interleaved rounds of {settings.clients} keep-alive connections "
        "of anonymous 2026-07-28 calls of `echo`, every target in the same run: the proxy in front of a "
        "Node stdio server, the gateway (`incomingAuth` anonymous, with and without `authz`) in front of "
        "the same server over streamable HTTP. The ratio of CPU per call (off / on) of the proxy's or "
        "gateway's own process is what its throughput ratio would be with the cores to itself; the "
        "calls/s ratio also carries the shared machine's load.",
        f"- The request policy's own handling of a `tools/call` (backend answer immediate, in process): "
        f"{results.off_request_us:.1f} us off, {results.on_request_us:.1f} us on: authorization adds "
        f"**{results.on_request_us - results.off_request_us:.1f} us** per call; the throughput ratios "
        "above move by tens of percent between runs on the shared machine, this does not.",
        f"- A decision not cached costs {results.first_decision_us:.0f} us (one `cedarpy` call over the "
        "policies whose scope can match the principal).",
        "- The first listing is timed with a fresh policy engine for every sample (nothing cached: the "
        "policies that can apply to the principal selected and parsed, every entry reduced, one engine "
        "call); the steady state is a principal listing again.",
        "",
        "Notes. A decision is a pure function of the policy set, the principal's claims the policies read, "
        "the item and the arguments the policies read, so it is cached per policy set; the first decision "
        "for a principal pays one engine call (build the request entities, Cedar's evaluation). Only the "
        "policies whose principal and action scopes can match are evaluated (a principal in 2 of 96 teams "
        "sees a handful of the 100). A list is filtered in one pass over its entries: each is reduced to "
        "what those policies can tell apart (its server, the annotation hints they read, its name only "
        "when they name it), and the distinct ones, a few for 200 tools, are decided together: from the "
        "cache, else in one engine call with the request entities built once.",
        END,
    ]
    return "\n".join(lines) + "\n"
