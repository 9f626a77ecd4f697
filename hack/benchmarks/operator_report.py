"""The operator benchmark's section of docs/benchmarks.md, from its measurements (pure: no I/O).

Measurements are what ``hack/bench_operator --json`` saves: ``results`` (per measure, one value per
repeat; medians are reported) and ``counts`` (writes, reconciles, the steady window: from the last run).
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass, field
from typing import Any

USER_CONCURRENCY = 64
"""How many MCPServer creates / edits / deletes the benchmark (the user) sends at once."""
MARK_START, MARK_END = "<!-- bench_operator:start -->", "<!-- bench_operator:end -->"
WHO = ("floor16", "floor64", "operator")


@dataclass(frozen=True)
class Settings:
    """The flags a report quotes (the command to rerun it, the operator's flags)."""

    n: int
    repeats: int
    steady: float
    resync: float
    workers: int
    edits: int

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Settings:
        return cls(args.n, args.repeats, args.steady, args.resync, args.workers, args.edits)


@dataclass
class Measurements:
    """Timings per repeat (``results``) and the last run's counts (``counts``), as ``--json`` saves them."""

    results: dict[str, list[float]] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)

    def record(self, key: str, value: float) -> None:
        self.results.setdefault(key, []).append(value)

    def merge(self, earlier: dict[str, Any]) -> None:
        """Take an earlier run's ``--json`` timings in, for medians across separate invocations."""
        for key, values in earlier["results"].items():
            self.results.setdefault(key, [])[:0] = values

    def med(self, key: str) -> float:
        return float(statistics.median(self.results.get(key) or [float("nan")]))

    def ratio(self, key: str) -> float:
        """The operator's median of ``key`` (``create_s``, ``roll_s``) over the best floor's."""
        best = min(self.med(f"floor16.{key}"), self.med(f"floor64.{key}"))
        return self.med(f"operator.{key}") / best


def row(label: str, *cells: str) -> str:
    return "| " + " | ".join([label, *cells, *([""] * (4 - len(cells)))]) + " |"


def table(m: Measurements, s: Settings) -> list[str]:
    """The measures table: the floor at two concurrencies beside the operator."""
    c = m.counts

    def cpu(prefix: str) -> str:
        return f"{m.med(prefix + '_cpu_plane_s'):.1f} / {m.med(prefix + '_cpu_client_s'):.1f}"

    lines = [
        "| Measure | Floor c=16 | Floor c=64 | Operator | Operator / best floor |",
        "|---|---:|---:|---:|---:|",
        row(
            "create N, converge (s)",
            *(f"{m.med(f'{w}.create_s'):.1f}" for w in WHO),
            f"**{m.ratio('create_s'):.2f}x**",
        ),
        row(
            "writes per MCPServer, creation",
            *(f"{c.get(f'{w}.create_writes_per_server', 0):.2f}" for w in WHO),
        ),
        row(
            "image roll across N (s)",
            *(f"{m.med(f'{w}.roll_s'):.1f}" for w in WHO),
            f"**{m.ratio('roll_s'):.2f}x**",
        ),
        row("writes per MCPServer, roll", *(f"{c.get(f'{w}.roll_writes_per_server', 0):.2f}" for w in WHO)),
        row(
            "reconciles per MCPServer, creation / roll",
            "",
            "",
            f"{c.get('operator.create_reconciles_per_server', 0):.2f} / "
            f"{c.get('operator.roll_reconciles_per_server', 0):.2f}",
        ),
        row("CPU s, creation: apiserver+etcd / client process", *(cpu(f"{w}.create") for w in WHO)),
        row("CPU s, roll: apiserver+etcd / client process", *(cpu(f"{w}.roll") for w in WHO)),
        f"| delete N (s) | | | {m.med('operator.delete_s'):.1f} | |",
        f"| operator RSS idle / peak / final (MB) | | | {m.med('operator.rss_idle_mb'):.0f} / "
        f"{m.med('operator.rss_peak_mb'):.0f} / {m.med('operator.rss_final_mb'):.0f} | |",
    ]
    if "operator.steady_writes" in c:
        lines += [
            f"| writes in a {c['operator.steady_seconds']} s steady window (reconciles) | | | "
            f"{c['operator.steady_writes']} ({c['operator.steady_reconciles']:.0f}) | |",
            f"| one edit at idle to its StatefulSet, p50 / p99 over {min(s.n, s.edits)} (s) | | | "
            f"{c['operator.edit_p50_s']:.3f} / {c['operator.edit_p99_s']:.3f} | |",
        ]
    return lines


def report(m: Measurements, s: Settings, run_line: str) -> str:
    """The section's text below its markers; ``run_line`` says when, where and with which versions."""
    c = m.counts
    runs = len(m.results.get("operator.create_s", []))
    lines = [
        "## Operator (`hack/bench_operator`)",
        "",
        f"Run {run_line}.",
        f"N = {s.n} stdio MCPServers (8 children each), {runs} run(s), medians of the timings "
        "(counts from the last run; each repeat starts with the next phase in turn). Operator: "
        f"`--workers {s.workers} --kube-api-qps 0` (the default 20 qps client limiter would cap creation at "
        f"about 2 servers/s), `--resync-period {s.resync:.0f}`; the benchmark creates, edits and deletes "
        f"MCPServers {USER_CONCURRENCY} at a time. Writes are `apiserver_request_total` deltas (POST, PUT, "
        "PATCH, DELETE on MCPServers, their children and Events) minus the benchmark's own.",
        "",
        *table(m, s),
        "",
        f"Creation writes by resource: {c.get('operator.create_writes_by_resource')}; roll: "
        f"{c.get('operator.roll_writes_by_resource')}; children missing after creation / roll: "
        f"{c.get('operator.create_missing_children')} / {c.get('operator.roll_missing_children')}.",
        "All runs (s): "
        + "; ".join(
            f"{k} {', '.join(f'{v:.1f}' for v in vs)}" for k, vs in m.results.items() if "_cpu_" not in k
        ),
        "",
        f"Rerun: `make bench BENCH=operator` or `hack/bench_operator --n {s.n} --repeats {s.repeats} "
        f"--steady {s.steady:.0f} --write-docs`.",
    ]
    return "\n".join(lines)


def section(text: str, notes: str) -> str:
    """The whole section between its markers: the report, then the hand-written notes kept as they were."""
    return f"{MARK_START}\n{text}\n\n{notes}{MARK_END}"


def notes_of(doc: str) -> str:
    """The hand-written notes kept between the table and the end marker (``### Notes`` onwards)."""
    if MARK_START not in doc:
        return ""
    inner = doc.split(MARK_START, 1)[1].split(MARK_END, 1)[0]
    return inner[inner.index("### Notes") :] if "### Notes" in inner else ""
