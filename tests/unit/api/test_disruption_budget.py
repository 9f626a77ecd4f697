"""``spec.podDisruptionBudget`` on the three workload kinds: what is accepted and what is refused."""

from __future__ import annotations

from typing import Any

import pytest

from api.validation import parse_and_validate

META = {"name": "w", "namespace": "team"}
KINDS: dict[str, dict[str, Any]] = {
    "MCPServer": {"image": "x:1", "transport": "streamable-http", "replicas": 2},
    "MCPRemoteProxy": {"remoteUrl": "https://mcp.example.com/mcp", "replicas": 2},
    "VirtualMCPServer": {"groupRef": {"name": "g"}, "incomingAuth": {"type": "anonymous"}, "replicas": 2},
}


def problems_of(kind: str, budget: Any, **spec: Any) -> list[str]:
    obj = {
        "apiVersion": "mcp-operator.dev/v1beta1",
        "kind": kind,
        "metadata": META,
        "spec": {**KINDS[kind], **spec, "podDisruptionBudget": budget},
    }
    _, problems = parse_and_validate(obj)
    return [str(p) for p in problems]


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("budget", [{"minAvailable": 1}, {"maxUnavailable": "50%"}, {"minAvailable": 0}])
def test_one_count_or_percentage_is_accepted(kind: str, budget: dict[str, Any]) -> None:
    assert problems_of(kind, budget) == []


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_both_or_neither_field_is_refused_naming_the_budget(kind: str) -> None:
    [both] = problems_of(kind, {"minAvailable": 1, "maxUnavailable": 1})
    assert both.startswith("spec.podDisruptionBudget: set exactly one of minAvailable and maxUnavailable")
    [neither] = problems_of(kind, {})
    assert "not neither" in neither


@pytest.mark.parametrize(
    ("budget", "message"),
    [
        ({"minAvailable": -1}, "spec.podDisruptionBudget.minAvailable: is -1"),
        ({"maxUnavailable": "150%"}, "spec.podDisruptionBudget.maxUnavailable: '150%' is neither"),
        ({"maxUnavailable": "1"}, "spec.podDisruptionBudget.maxUnavailable: '1' is neither"),
        ({"minAvailable": True}, "spec.podDisruptionBudget.minAvailable: True is neither"),
        ({"minAvailable": {"count": 1}}, "spec.podDisruptionBudget.minAvailable: {'count': 1} is neither"),
    ],
)
def test_bad_values_are_refused_naming_the_field(budget: dict[str, Any], message: str) -> None:
    [problem] = problems_of("MCPServer", budget)
    assert problem.startswith(message)


def test_a_budget_on_a_stdio_proxy_is_refused_with_the_fix() -> None:
    # The stdio proxy runs one pod whatever spec.replicas says: minAvailable 1 would block drains forever.
    [problem] = problems_of("MCPServer", {"minAvailable": 1}, transport="stdio")
    assert problem.startswith("spec.podDisruptionBudget: a stdio server's proxy runs exactly one pod")
    assert "remove podDisruptionBudget" in problem and "streamable-http" in problem
