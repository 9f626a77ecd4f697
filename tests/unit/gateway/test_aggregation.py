"""The gateway's merge rules: filters, overrides and the three conflict-resolution policies."""

from __future__ import annotations

from typing import Any

import pytest
from mcp_types import Prompt, Resource, ResourceTemplate, Tool

from api.vmcp_config import AggregationConfig
from gateway.vmcp.aggregation import BackendCapabilities, Conflict, Route, aggregate, prefixed_name


def tool(name: str, description: str = "") -> Tool:
    return Tool(name=name, description=description or f"{name} tool", input_schema={"type": "object"})


def caps(*tools: str, prompts: tuple[str, ...] = ()) -> BackendCapabilities:
    return BackendCapabilities(tools=[tool(t) for t in tools], prompts=[Prompt(name=p) for p in prompts])


BACKENDS = {
    "everything": caps("echo", "get-sum", prompts=("simple",)),
    "fixture": caps("echo", "slow", prompts=("simple",)),
    "time": caps("get_current_time"),
}


def policy(**kwargs: Any) -> AggregationConfig:
    return AggregationConfig.model_validate(kwargs)


def names(view: Any) -> list[str]:
    return [t.name for t in view.tools]


def test_prefix_is_the_default_and_prefixes_every_tool() -> None:
    view = aggregate(BACKENDS, policy())
    assert names(view) == [
        "everything_echo",
        "everything_get-sum",
        "fixture_echo",
        "fixture_slow",
        "time_get_current_time",
    ]
    assert view.tool_routes["fixture_echo"] == Route("fixture", "echo")
    assert view.tool_routes["everything_echo"] == Route("everything", "echo")
    assert [p.name for p in view.prompts] == ["everything_simple", "fixture_simple"]
    assert view.conflicts == ()


def test_prefix_format_is_configurable() -> None:
    view = aggregate(BACKENDS, policy(conflictResolutionConfig={"prefixFormat": "{workload}."}))
    assert "fixture.echo" in names(view)
    assert view.tool_routes["time.get_current_time"] == Route("time", "get_current_time")


def test_prefix_collisions_after_prefixing_are_dropped_and_reported() -> None:
    view = aggregate({"a": caps("b_c"), "a_b": caps("c")}, policy())
    assert names(view) == []
    assert view.conflicts == (Conflict("tool", "a_b_c", ("a", "a_b"), None),)


def test_priority_first_listed_wins_and_the_rest_are_reported() -> None:
    view = aggregate(
        BACKENDS,
        policy(conflictResolution="priority", conflictResolutionConfig={"priorityOrder": ["fixture"]}),
    )
    assert names(view) == ["echo", "get-sum", "get_current_time", "slow"]
    assert view.tool_routes["echo"] == Route("fixture", "echo")
    assert view.tool_routes["get-sum"] == Route("everything", "get-sum")
    assert Conflict("tool", "echo", ("fixture", "everything"), "fixture") in view.conflicts
    assert [c.describe() for c in view.conflicts if c.kind == "tool"] == [
        "tool 'echo' is offered by fixture, everything: fixture wins, dropped everything"
    ]


def test_priority_ranks_unlisted_backends_by_name() -> None:
    view = aggregate(
        {"zeta": caps("x"), "alpha": caps("x"), "mid": caps("x")},
        policy(conflictResolution="priority", conflictResolutionConfig={"priorityOrder": ["mid"]}),
    )
    assert view.tool_routes["x"] == Route("mid", "x")
    assert view.conflicts[0].backends == ("mid", "alpha", "zeta")


def test_manual_overrides_resolve_and_unresolved_conflicts_expose_nobody() -> None:
    view = aggregate(
        BACKENDS,
        policy(
            conflictResolution="manual",
            tools=[
                {"workload": "fixture", "overrides": {"echo": {"name": "fixture_echo", "description": "d"}}}
            ],
        ),
    )
    assert names(view) == ["echo", "fixture_echo", "get-sum", "get_current_time", "slow"]
    assert view.tool_routes["fixture_echo"] == Route("fixture", "echo")
    assert view.tool_routes["echo"] == Route("everything", "echo")
    assert next(t for t in view.tools if t.name == "fixture_echo").description == "d"
    # prompts have no overrides: the shared prompt name stays unresolved and hidden
    assert [p.name for p in view.prompts] == []
    assert view.conflicts == (Conflict("prompt", "simple", ("everything", "fixture"), None),)

    unresolved = aggregate(BACKENDS, policy(conflictResolution="manual"))
    assert "echo" not in names(unresolved)
    assert "echo" not in unresolved.tool_routes
    assert Conflict("tool", "echo", ("everything", "fixture"), None) in unresolved.conflicts


def test_filters_apply_before_conflict_resolution() -> None:
    # Filtering fixture's echo away removes the conflict, so manual needs no override.
    view = aggregate(
        BACKENDS, policy(conflictResolution="manual", tools=[{"workload": "fixture", "filter": ["slow"]}])
    )
    assert names(view) == ["echo", "get-sum", "get_current_time", "slow"]
    assert view.tool_routes["echo"] == Route("everything", "echo")
    assert not [c for c in view.conflicts if c.kind == "tool"]


def test_filter_globs_exclude_all_and_hidden_tools_do_not_route() -> None:
    view = aggregate(
        BACKENDS,
        policy(
            tools=[{"workload": "everything", "filter": ["get-*"]}, {"workload": "time", "excludeAll": True}]
        ),
    )
    assert names(view) == ["everything_get-sum", "fixture_echo", "fixture_slow"]
    assert "everything_echo" not in view.tool_routes
    assert "time_get_current_time" not in view.tool_routes


def test_overrides_rename_before_prefixing() -> None:
    view = aggregate(
        BACKENDS, policy(tools=[{"workload": "time", "overrides": {"get_current_time": {"name": "now"}}}])
    )
    assert view.tool_routes["time_now"] == Route("time", "get_current_time")


def test_config_that_matches_nothing_is_warned_about() -> None:
    view = aggregate(
        BACKENDS,
        policy(
            conflictResolution="priority",
            conflictResolutionConfig={"priorityOrder": ["gone"]},
            tools=[{"workload": "ghost"}, {"workload": "time", "overrides": {"nope": {"name": "x"}}}],
        ),
    )
    assert any("'ghost'" in w for w in view.warnings)
    assert any("'nope'" in w for w in view.warnings)
    assert any("'gone'" in w for w in view.warnings)


def test_resources_keep_their_uris_best_ranked_backend_wins() -> None:
    a = BackendCapabilities(
        resources=[Resource(name="doc", uri="demo://doc/1")],
        resource_templates=[ResourceTemplate(name="t", uri_template="demo://item/{id}")],
    )
    b = BackendCapabilities(
        resources=[Resource(name="other", uri="demo://doc/1"), Resource(name="m", uri="mem://g")]
    )
    view = aggregate({"b": b, "a": a}, policy())
    assert [str(r.uri) for r in view.resources] == ["demo://doc/1", "mem://g"]
    assert view.route_resource("demo://doc/1") == Route("a", "demo://doc/1")
    assert view.route_resource("mem://g") == Route("b", "mem://g")
    assert view.route_resource("demo://item/42") == Route("a", "demo://item/42")
    assert view.route_resource("demo://item/4/2") is None
    assert Conflict("resource", "demo://doc/1", ("a", "b"), "a") in view.conflicts


def test_prefixed_name_rejects_bad_formats() -> None:
    assert prefixed_name("{workload}_", "git", "status") == "git_status"
    assert prefixed_name("mcp-", "git", "status") == "mcp-status"
    with pytest.raises(ValueError, match="placeholder"):
        prefixed_name("{backend}_", "git", "status")
    with pytest.raises(ValueError, match="characters"):
        prefixed_name("{workload}/", "git", "status")


def test_an_override_onto_an_existing_name_hides_the_shadowed_tool_with_a_warning() -> None:
    view = aggregate(
        {"a": caps("x", "y")},
        policy(conflictResolution="manual", tools=[{"workload": "a", "overrides": {"x": {"name": "y"}}}]),
    )
    assert view.tool_routes == {"y": Route("a", "x")}
    assert view.warnings == (
        "aggregation.tools[a].overrides: 'x' is renamed to 'y', which hides the backend's tool 'y'",
    )
