"""docs/alerts.yaml under the real ``promtool`` (Debian's prometheus package): the rules load, and every
alert has a unit test that fires it and one that does not (``promtool test rules``).

The cases are data here; the expected annotations are the rule's own with ``$labels`` filled in, as
Prometheus renders them, so a changed expression or ``for`` is caught and a reworded text is not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cluster import ROOT, Cluster
from tests.support.prometheus import MISSING, PROMTOOL, prometheus_rules, promtool

ALERTS = ROOT / "docs" / "alerts.yaml"
OPERATOR = 'job="mcp-operator-metrics",namespace="mcp-operator-system"'
PROXY = 'job="mcp/proxies",namespace="team",pod="fetch-6d9f"'
CALLS = 'method="tools/call",tool="fetch"'


@dataclass(frozen=True)
class Case:
    """Input series (``series`` -> promtool's expanding notation, one sample a minute) and the labels of
    the alert expected at ``minutes``; ``labels=None`` expects no alert."""

    series: dict[str, str]
    minutes: int
    labels: dict[str, str] | None


FIRING: dict[str, Case] = {
    "MCPOperatorDown": Case({f"up{{{OPERATOR}}}": "0x10"}, 6, {}),
    "MCPOperatorNoLeader": Case(
        {f'leader_election_master_status{{{OPERATOR},name="mcp-operator-leader"}}': "0x5"}, 3, {}
    ),
    "MCPOperatorReconcileErrors": Case(
        {f'controller_runtime_reconcile_errors_total{{{OPERATOR},controller="mcpserver"}}': "0+12x40"},
        30,
        {"controller": "mcpserver"},
    ),
    "MCPOperatorInvalidSpecs": Case(
        {f'controller_runtime_terminal_reconcile_errors_total{{{OPERATOR},controller="mcpserver"}}': "0 1 1"},
        2,
        {"controller": "mcpserver"},
    ),
    "MCPOperatorReconcilePanics": Case(
        {f'controller_runtime_reconcile_panics_total{{{OPERATOR},controller="mcpgroup"}}': "0 0 1 1"},
        3,
        {"controller": "mcpgroup"},
    ),
    "MCPOperatorQueueBacklog": Case(
        {f'workqueue_depth{{{OPERATOR},name="mcpserver"}}': "150x20"}, 16, {"name": "mcpserver"}
    ),
    "MCPOperatorStuckReconcile": Case(
        {f'workqueue_longest_running_processor_seconds{{{OPERATOR},name="mcpserver"}}': "400+60x10"},
        6,
        {"name": "mcpserver"},
    ),
    "MCPOperatorAPIErrors": Case(
        {
            f'rest_client_requests_total{{{OPERATOR},code="200",method="GET"}}': "0+60x20",
            f'rest_client_requests_total{{{OPERATOR},code="429",method="GET"}}': "0+10x20",
        },
        16,
        {},
    ),
    "MCPProxyBackendDown": Case(
        {f"mcp_proxy_backend_up{{{PROXY}}}": "1 0x10"}, 7, {"namespace": "team", "pod": "fetch-6d9f"}
    ),
    "MCPRequestErrors": Case(
        {
            f'mcp_proxy_requests_total{{{PROXY},{CALLS},outcome="ok"}}': "0+60x20",
            f'mcp_proxy_requests_total{{{PROXY},{CALLS},outcome="error"}}': "0+30x20",
        },
        16,
        {"namespace": "team", "pod": "fetch-6d9f"},
    ),
    "MCPTracingSpansDropped": Case(
        {f'mcp_tracing_spans_dropped_total{{{PROXY},reason="export_failed"}}': "0+20x40"},
        20,
        {"namespace": "team", "pod": "fetch-6d9f"},
    ),
    "MCPMetricsExportFailing": Case(
        {f'mcp_metrics_points_dropped_total{{{PROXY},reason="export_failed"}}': "0+30x40"},
        20,
        {"namespace": "team", "pod": "fetch-6d9f"},
    ),
}
"""Per alert, series that fire it."""

QUIET: dict[str, Case] = {
    "MCPOperatorDown": Case({f"up{{{OPERATOR}}}": "1x10"}, 6, None),
    "MCPOperatorNoLeader": Case(
        {f'leader_election_master_status{{{OPERATOR},name="mcp-operator-leader"}}': "1x5"}, 3, None
    ),
    "MCPOperatorReconcileErrors": Case(
        {f'controller_runtime_reconcile_errors_total{{{OPERATOR},controller="mcpserver"}}': "0+1x40"},
        30,
        None,
    ),
    "MCPOperatorInvalidSpecs": Case(
        {f'controller_runtime_terminal_reconcile_errors_total{{{OPERATOR},controller="mcpserver"}}': "1x3"},
        2,
        None,
    ),
    "MCPOperatorReconcilePanics": Case(
        {f'controller_runtime_reconcile_panics_total{{{OPERATOR},controller="mcpgroup"}}': "0x4"}, 3, None
    ),
    "MCPOperatorQueueBacklog": Case(
        # deep, but only for 10 minutes of the 15 the alert waits
        {f'workqueue_depth{{{OPERATOR},name="mcpserver"}}': "150x10 3x10"},
        16,
        None,
    ),
    "MCPOperatorStuckReconcile": Case(
        {f'workqueue_longest_running_processor_seconds{{{OPERATOR},name="mcpserver"}}': "2x10"}, 6, None
    ),
    "MCPOperatorAPIErrors": Case(
        {
            f'rest_client_requests_total{{{OPERATOR},code="200",method="GET"}}': "0+60x20",
            f'rest_client_requests_total{{{OPERATOR},code="429",method="GET"}}': "0+1x20",
        },
        16,
        None,
    ),
    "MCPProxyBackendDown": Case({f"mcp_proxy_backend_up{{{PROXY}}}": "1x10"}, 7, None),
    "MCPRequestErrors": Case(
        {
            f'mcp_proxy_requests_total{{{PROXY},{CALLS},outcome="ok"}}': "0+60x20",
            f'mcp_proxy_requests_total{{{PROXY},{CALLS},outcome="tool_error"}}': "0+30x20",
        },
        16,
        None,
    ),
    "MCPTracingSpansDropped": Case(
        # one burst of drops (a collector restart), then none for longer than the 15 minute window
        {f'mcp_tracing_spans_dropped_total{{{PROXY},reason="export_failed"}}': "0 50x40"},
        20,
        None,
    ),
    "MCPMetricsExportFailing": Case(
        # one failed export (a collector restart), then none for longer than the 15 minute window
        {f'mcp_metrics_points_dropped_total{{{PROXY},reason="export_failed"}}': "0 30x40"},
        20,
        None,
    ),
}
"""Per alert, series close to the threshold that must not fire it."""


def alert_rules() -> dict[str, dict[str, Any]]:
    rules = prometheus_rules(yaml.safe_load(ALERTS.read_text()))
    return {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"] if "alert" in rule}


def rendered(text: str, labels: dict[str, str]) -> str:
    """An annotation as Prometheus renders it for an alert with ``labels`` (only ``$labels.x`` is used)."""
    return re.sub(r"\{\{\s*\$labels\.(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), text)


def unit_test(name: str, rule: dict[str, Any], case: Case) -> dict[str, Any]:
    expected: list[dict[str, Any]] = []
    if case.labels is not None:
        labels = {**rule.get("labels", {}), **case.labels}
        annotations = {key: rendered(value, labels) for key, value in rule.get("annotations", {}).items()}
        expected.append({"exp_labels": labels, "exp_annotations": annotations})
    return {
        "interval": "1m",
        "input_series": [{"series": series, "values": values} for series, values in case.series.items()],
        "alert_rule_test": [{"eval_time": f"{case.minutes}m", "alertname": name, "exp_alerts": expected}],
    }


@pytest.fixture
def rules_dir(cluster: Cluster, tmp_path: Path) -> Path:
    """The rules as Prometheus reads them (``hack/cluster up``, behind ``cluster``, installs promtool)."""
    assert PROMTOOL.exists(), MISSING
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(prometheus_rules(yaml.safe_load(ALERTS.read_text()))))
    return tmp_path


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    assert set(FIRING) == set(alert_rules()) == set(QUIET)


def test_promtool_checks_the_rules(rules_dir: Path) -> None:
    result = promtool("check", "rules", "rules.yaml", cwd=rules_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_promtool_unit_tests_fire_each_alert_and_keep_it_quiet(rules_dir: Path) -> None:
    rules = alert_rules()
    tests = [unit_test(name, rules[name], case) for cases in (FIRING, QUIET) for name, case in cases.items()]
    (rules_dir / "alerts_test.yaml").write_text(
        yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests})
    )
    result = promtool("test", "rules", "alerts_test.yaml", cwd=rules_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_catches_an_alert_that_does_not_fire(rules_dir: Path) -> None:
    """The harness can fail: a firing case evaluated before ``for`` has elapsed is reported."""
    rule = alert_rules()["MCPOperatorQueueBacklog"]
    early = Case(FIRING["MCPOperatorQueueBacklog"].series, 5, {"name": "mcpserver"})
    (rules_dir / "early_test.yaml").write_text(
        yaml.safe_dump(
            {
                "rule_files": ["rules.yaml"],
                "evaluation_interval": "1m",
                "tests": [unit_test("MCPOperatorQueueBacklog", rule, early)],
            }
        )
    )
    result = promtool("test", "rules", "early_test.yaml", cwd=rules_dir)
    assert result.returncode != 0
    assert "MCPOperatorQueueBacklog" in result.stdout + result.stderr
