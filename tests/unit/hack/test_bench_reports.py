"""The benchmarks' report code on saved results (bench_results.json): the figures docs/benchmarks.md
shows are the right medians and ratios of what was measured, and a report replaces only its own section."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from hack.benchmarks import authz_report, operator_report, pods_report, proxy_report, vmcp_report
from hack.benchmarks.cli import UsageError, commands, parse
from hack.benchmarks.common import replace_section

SAVED: dict[str, Any] = json.loads((Path(__file__).parent / "bench_results.json").read_text())


def operator_measurements() -> operator_report.Measurements:
    saved = SAVED["operator"]
    return operator_report.Measurements(
        {k: list(v) for k, v in saved["results"].items()}, dict(saved["counts"])
    )


def operator_text(m: operator_report.Measurements) -> str:
    settings = operator_report.Settings(**SAVED["operator"]["settings"])
    return operator_report.report(m, settings, "2026-12-01 10:00 UTC on the test machine")


def table_row(text: str, label: str) -> list[str]:
    line = next(line for line in text.splitlines() if line.startswith(f"| {label} |"))
    return [cell.strip() for cell in line.strip("|").split("|")][1:]


def test_operator_ratio_is_the_operators_median_over_the_best_floors_median() -> None:
    text = operator_text(operator_measurements())
    # create: floor medians 60 (c=16) and 50 (c=64), the operator's median 51 -> 51 / 50
    assert table_row(text, "create N, converge (s)") == ["60.0", "50.0", "51.0", "**1.02x**"]
    # roll: the c=16 floor is the best here (21 vs 24), the operator's median 21
    assert table_row(text, "image roll across N (s)") == ["21.0", "24.0", "21.0", "**1.00x**"]
    assert table_row(text, "writes per MCPServer, creation") == ["9.00", "9.00", "9.00", ""]
    assert table_row(text, "operator RSS idle / peak / final (MB)") == ["", "", "60 / 95 / 90", ""]
    cpu = table_row(text, "CPU s, creation: apiserver+etcd / client process")
    assert cpu == ["50.0 / 20.0", "52.0 / 19.0", "53.0 / 30.0", ""]


def test_operator_steady_rows_come_from_the_last_runs_counts() -> None:
    text = operator_text(operator_measurements())
    assert table_row(text, "writes in a 300 s steady window (reconciles)") == ["", "", "0 (5000)", ""]
    edit = table_row(text, "one edit at idle to its StatefulSet, p50 / p99 over 50 (s)")
    assert edit == ["", "", "0.012 / 0.025", ""]
    m = operator_measurements()
    del m.counts["operator.steady_writes"]  # not the last repeat: no steady window was measured
    assert "steady window" not in operator_text(m)


def test_merged_earlier_runs_enter_the_medians() -> None:
    m = operator_measurements()
    m.merge({"results": {"operator.create_s": [100.0, 100.0]}})
    assert m.results["operator.create_s"] == [100.0, 100.0, 55.0, 49.5, 51.0]
    assert table_row(operator_text(m), "create N, converge (s)")[2:] == ["55.0", "**1.10x**"]


def test_operator_section_keeps_the_hand_written_notes_and_the_other_sections() -> None:
    doc = (
        "# Benchmarks\n\n<!-- bench_operator:start -->\n## Operator\n\nold table\n\n### Notes\n\nkept\n"
        "<!-- bench_operator:end -->\n\n<!-- bench_proxy:begin -->\nproxy\n<!-- bench_proxy:end -->\n"
    )
    notes = operator_report.notes_of(doc)
    assert notes == "### Notes\n\nkept\n"
    block = operator_report.section("## Operator\n\nnew table", notes)
    updated = replace_section(doc, operator_report.MARK_START, operator_report.MARK_END, block, first=True)
    assert "old table" not in updated and "new table\n\n### Notes\n\nkept\n<!-- bench_operator:end" in updated
    assert updated.endswith("\n\n<!-- bench_proxy:begin -->\nproxy\n<!-- bench_proxy:end -->\n")


def test_a_missing_section_goes_after_the_title_or_at_the_end() -> None:
    doc = "# Benchmarks\n\n<!-- a:begin -->\na\n<!-- a:end -->\n"
    assert replace_section(doc, "<b>", "</b>", "<b>B</b>", first=True).startswith(
        "# Benchmarks\n\n<b>B</b>\n\n"
    )
    assert replace_section(doc, "<b>", "</b>", "<b>B</b>").endswith("<!-- a:end -->\n\n<b>B</b>\n")


def proxy_text() -> str:
    runs = SAVED["proxy"]["runs"]
    settings = proxy_report.Settings(**SAVED["proxy"]["settings"])
    return proxy_report.render(runs, settings, "2026-12-01 10:00 UTC on the test machine")


def test_proxy_headline_figures_are_medians_of_each_runs_figures() -> None:
    text = proxy_text()
    # per run (ours - direct, p50): +0.5, +0.4, +0.6 ms; session era 0.0, -0.2, -0.1 ms (the median of
    # the combined rows would say 0.00); throughput ours / fastmcp 2.0, 2.1, 2.0 and 4.0 with Node.
    assert "Added p50 of our proxy over direct: **+0.50 ms** (2026-07-28), **-0.10 ms** (2025-11-25)" in text
    assert "**2.00x** in front of the fixture" in text
    assert "**4.00x** in front of the Node server" in text
    assert "+0.50 ms / +0.00 ms / 2.00x / 4.00x; +0.40 ms / -0.20 ms / 2.10x / 4.00x" in text
    assert text.startswith(proxy_report.BEGIN) and text.endswith(proxy_report.END + "\n")


def test_proxy_tables_show_the_median_of_each_figure_over_the_runs() -> None:
    text = proxy_text()
    assert table_row(text, "mcp-operator proxy, stdio backend") == ["3.50", "6.00", "4.00", "7.00", "800"]
    assert table_row(text, "fastmcp create_proxy, Node stdio backend") == ["500", "1950", "150"]
    assert "p50 of fastmcp's proxy / ours: 2.00x." in text
    assert "fast path: p50 5.00 -> 3.50 ms (2026-07-28)" in text
    assert "proxy served 9000 `/mcp` requests on its fast path and 12 on the SDK path" in text


def vmcp_text() -> str:
    saved = SAVED["vmcp"]
    settings = proxy_report.Settings(*saved["settings"])
    return vmcp_report.render(saved["runs"], settings, "2026-12-05 on the test machine")


def test_vmcp_headlines_are_medians_over_runs_with_each_target_judged() -> None:
    first, second = (vmcp_report.headline(run) for run in SAVED["vmcp"]["runs"])
    assert round(first["gateway_hop"], 2) == 0.8 and round(second["gateway_hop"], 2) == 1.2
    assert round(first["list_ratio"], 2) == 1.1 and round(second["list_ratio"], 2) == 1.3
    text = vmcp_text()
    # Gateway hop: median of +0.8 and +1.2 = +1.0 ms; the proxy's +0.65 ms + 0.3 = +0.95 ms: not met.
    assert "over direct: **+1.00 ms** (2026-07-28; +0.25 ms in the 2025-11-25 session era)" in text
    assert "+ 0.3 ms = +0.95 ms: **not met**" in text
    assert "10 backends / 1 backend, from the gateway's cache: **1.20x**; target at most 1.2x: met" in text
    assert "in front of the same backend: **2.08x**; target at least 2.0x: met" in text
    assert "+0.80 / +0.70 ms, lists 1.10x, 2.50x; +1.20 / +0.60 ms, lists 1.30x, 1.67x" in text


def test_vmcp_tables_show_the_median_of_each_figure_over_the_runs() -> None:
    text = vmcp_text()
    row = ["3.55", "7.10", "4.10", "8.20", "850", "1002"]
    assert table_row(text, "mcp-operator gateway, 1 backend") == row
    assert table_row(text, "10 backends") == ["2.40"] and table_row(text, "1 backend") == ["2.00"]
    assert "served 9000 `/mcp` requests on its fast path and 12 on the SDK path" in text


def test_hack_bench_passes_operator_flags_on_and_refuses_unknown_ones() -> None:
    plan = parse(["operator", "--n", "5", "--no-write", "--", "--kubeconfig", "k"])
    [(name, argv)] = commands(plan)
    assert name == "operator" and argv[2:] == ["--n", "5", "--kubeconfig", "k"]
    assert [name for name, _ in commands(parse([]))] == ["operator", "proxy", "vmcp"]
    assert commands(parse(["proxy", "--no-write"]))[0][1][2:] == ["--no-write"]
    assert commands(parse(["operator"]))[0][1][-1] == "--write-docs"
    with pytest.raises(UsageError, match="unknown argument '--fast'"):
        parse(["--fast"])


def test_pods_table_shows_each_measurements_median_and_range_over_the_runs() -> None:
    saved = SAVED["pods"]
    text = pods_report.render(saved["runs"], saved["calls"], "on the test machine")
    assert table_row(text, pods_report.READY_STDIO) == ["8.00", "7.50", "9.00"]
    assert table_row(text, pods_report.READY_HTTP) == ["6.50", "6.00", "12.00"]
    assert "3 runs" in text and "200 sequential" in text


def test_pods_added_latency_is_the_services_median_over_the_direct_median() -> None:
    saved = SAVED["pods"]
    # via the Service: median 4.0; direct: median 1.5 -> +2.50 ms
    assert pods_report.added_ms(saved["runs"]) == pytest.approx(2.5)
    assert "**+2.50 ms**" in pods_report.render(saved["runs"], saved["calls"], "here")


def test_the_real_pod_benchmark_runs_only_when_asked_for() -> None:
    assert "pods" not in parse([]).which  # it brings up a real node
    ((name, argv),) = commands(parse(["pods", "--no-write"]))
    assert name == "pods" and argv[1].endswith("hack/bench_pods") and argv[2:] == ["--no-write"]


def test_authz_report_states_the_ratios_the_added_cost_and_each_target_met_or_not() -> None:
    cpu = {"proxy off": 300.0, "proxy on": 330.0, "gateway off": 2000.0, "gateway on": 2100.0}
    results = authz_report.Results(20.0, 600.0, 1000.0, 3000.0, 900.0, 873.0, 5.0, 15.5, 500.0, 400.0, cpu)
    text = authz_report.render(results, SimpleNamespace(rounds=5, clients=8), "now")
    assert text.startswith(authz_report.BEGIN) and text.rstrip().endswith(authz_report.END)
    assert "authorization adds **10.5 us** per call" in text
    assert table_row(text, "`tools/list` of 200 tools filtered (steady state)") == ["1.000 ms"]
    targets = {line.split(" | ")[0].strip("| "): line.split(" | ")[1:] for line in text.splitlines()}
    assert targets["proxy throughput with authorization on at least 85% of off"] == [
        "0.97 (873 / 900 calls/s; its CPU per call 300 / 330 us off / on: 0.91)",
        "**met** |",
    ]
    assert targets["gateway throughput with authorization on at least 85% of off"][-1] == "**not met** |"
    assert targets["a decision adds at most 50 us p50 with 100 policies"] == ["20.0 us", "**met** |"]
    listing = "a `tools/list` of 200 tools filtered in under 2 ms (first listing, the worst case)"
    assert targets[listing] == ["3.000 ms", "**not met** |"]
