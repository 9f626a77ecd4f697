"""Properties of the merge that must hold for any backends and any policy."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from mcp_types import Tool

from api.vmcp_config import AggregationConfig, validate_prefix_format
from gateway.vmcp.aggregation import BackendCapabilities, aggregate

# Small alphabets on purpose: they make collisions (the interesting case) frequent.
backend_names = st.sampled_from(["a", "b", "a_b", "c", "time", "git"])
tool_names = st.sampled_from(["x", "y", "b_x", "echo", "get-sum", "status", "a_b_x"])


@st.composite
def scenario(draw: st.DrawFn) -> tuple[dict[str, list[str]], AggregationConfig]:
    names = draw(st.lists(backend_names, min_size=1, max_size=4, unique=True))
    backends = {n: draw(st.lists(tool_names, max_size=5, unique=True)) for n in names}
    strategy = draw(st.sampled_from(["prefix", "priority", "manual"]))
    order = draw(st.permutations(names).map(lambda p: list(p[: max(1, len(p) // 2)])))
    entries: list[dict[str, Any]] = []
    for name in draw(st.lists(st.sampled_from(names), max_size=2, unique=True)):
        entry: dict[str, Any] = {"workload": name}
        if draw(st.booleans()):
            entry["filter"] = draw(st.lists(tool_names, max_size=3))
        if draw(st.booleans()):
            entry["overrides"] = {draw(tool_names): {"name": draw(tool_names)}}
        entries.append(entry)
    policy = AggregationConfig.model_validate(
        {
            "conflictResolution": strategy,
            "conflictResolutionConfig": {
                "priorityOrder": order,
                "prefixFormat": draw(st.sampled_from(["{workload}_", "{workload}.", "{workload}", "x_"])),
            },
            "tools": entries,
        }
    )
    return backends, policy


def build(backends: dict[str, list[str]], reverse_tools: bool = False) -> dict[str, BackendCapabilities]:
    return {
        name: BackendCapabilities(
            tools=[
                Tool(name=t, description=f"{name}/{t}", input_schema={"type": "object"})
                for t in (reversed(tools) if reverse_tools else tools)
            ]
        )
        for name, tools in backends.items()
    }


@settings(max_examples=150, deadline=None)
@given(scenario(), st.randoms(use_true_random=False))
def test_result_does_not_depend_on_input_order(case: Any, rnd: Any) -> None:
    backends, policy = case
    shuffled = list(backends.items())
    rnd.shuffle(shuffled)
    first = aggregate(build(backends), policy)
    second = aggregate(build(dict(shuffled), reverse_tools=True), policy)
    assert first == second


@settings(max_examples=150, deadline=None)
@given(scenario())
def test_exposed_names_are_unique_and_route_to_a_backend_that_has_the_tool(case: Any) -> None:
    backends, policy = case
    view = aggregate(build(backends), policy)
    exposed = [t.name for t in view.tools]
    assert len(exposed) == len(set(exposed))
    assert set(exposed) == set(view.tool_routes)
    for tool in view.tools:
        route = view.tool_routes[tool.name]
        assert route.name in backends[route.backend]
        # the description travels with the tool unless an override changed it
        entry = policy.tools_for(route.backend)
        override = entry.overrides.get(route.name) if entry else None
        if override is None or override.description is None:
            assert tool.description == f"{route.backend}/{route.name}"


@settings(max_examples=150, deadline=None)
@given(scenario())
def test_filtered_tools_are_never_exposed_and_never_cause_conflicts(case: Any) -> None:
    backends, policy = case
    view = aggregate(build(backends), policy)
    for entry in policy.tools:
        if entry.filter:
            routed = {r.name for r in view.tool_routes.values() if r.backend == entry.workload}
            assert routed <= set(entry.filter)
    # Removing the filtered-out tools from the input changes nothing: filters come first.
    pruned = {
        name: [t for t in tools if (e := policy.tools_for(name)) is None or not e.filter or t in e.filter]
        for name, tools in backends.items()
    }
    assert aggregate(build(pruned), policy).tools == view.tools


@settings(max_examples=150, deadline=None)
@given(scenario())
def test_every_dropped_tool_is_reported(case: Any) -> None:
    backends, policy = case
    view = aggregate(build(backends), policy)
    shown = sum(
        1
        for name, tools in backends.items()
        for t in tools
        if (e := policy.tools_for(name)) is None or not e.filter or t in e.filter
    )
    dropped = sum(len(c.backends) - (c.winner is not None) for c in view.conflicts if c.kind == "tool")
    shadowed = sum(1 for w in view.warnings if "which hides" in w)
    assert len(view.tools) + dropped + shadowed == shown


@given(st.text(max_size=12))
def test_prefix_format_validation_accepts_only_legal_formats(fmt: str) -> None:
    legal_literal = fmt.replace("{workload}", "")
    ok = bool(fmt) and all(ch.isascii() and (ch.isalnum() or ch in "_-.") for ch in legal_literal)
    try:
        validate_prefix_format(fmt)
    except ValueError:
        assert not ok
    else:
        assert ok
