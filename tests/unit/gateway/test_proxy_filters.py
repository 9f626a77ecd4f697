"""The proxy's tool filter: allow / deny / rename / re-describe on tools/list, enforced on tools/call."""

from __future__ import annotations

import mcp_types as types
import pytest
from pydantic import ValidationError

from api.proxy_config import ProxyConfig, ToolFilterConfig, dump_proxy_config
from gateway.filters import ToolFilter

TOOLS = [
    types.Tool(name=n, description=f"{n} tool", input_schema={"type": "object"}) for n in ("a", "b", "c")
]


def _names(f: ToolFilter) -> list[str]:
    return [t.name for t in f.apply(TOOLS)]


def test_no_filter_shows_and_allows_everything() -> None:
    f = ToolFilter()
    assert _names(f) == ["a", "b", "c"]
    assert f.resolve("c") == "c"


def test_allow_list_hides_the_rest_and_hidden_tools_cannot_be_called() -> None:
    f = ToolFilter(ToolFilterConfig(allow=("a", "b")))
    assert _names(f) == ["a", "b"]
    assert f.resolve("c") is None


def test_deny_wins_over_allow() -> None:
    f = ToolFilter(ToolFilterConfig(allow=("a", "b"), deny=("b",)))
    assert _names(f) == ["a"]
    assert f.resolve("b") is None


def test_rename_and_redescribe_map_calls_back_to_the_original() -> None:
    f = ToolFilter(
        ToolFilterConfig.model_validate({"overrides": {"a": {"name": "alpha", "description": "new"}}})
    )
    listed = {t.name: t.description for t in f.apply(TOOLS)}
    assert listed == {"alpha": "new", "b": "b tool", "c": "c tool"}
    assert f.resolve("alpha") == "a"
    assert f.resolve("a") is None  # the old name is gone


def test_renamed_tool_cannot_be_reached_through_a_denied_original() -> None:
    f = ToolFilter(ToolFilterConfig.model_validate({"deny": ["a"], "overrides": {"a": {"name": "alpha"}}}))
    assert "alpha" not in _names(f)
    assert f.resolve("alpha") is None


def test_duplicate_override_names_are_refused_with_the_field_named() -> None:
    with pytest.raises(ValidationError, match="overrides"):
        ToolFilterConfig.model_validate({"overrides": {"a": {"name": "x"}, "b": {"name": "x"}}})


def test_config_round_trips_through_its_canonical_json() -> None:
    config = ProxyConfig.model_validate(
        {"backend": {"type": "attach", "namespace": "ns", "pod": "s-server-0"}, "toolFilter": {"deny": ["a"]}}
    )
    assert ProxyConfig.model_validate_json(dump_proxy_config(config)) == config


def test_http_backend_url_with_credentials_is_refused() -> None:
    with pytest.raises(ValidationError, match="credentials"):
        ProxyConfig.model_validate({"backend": {"type": "http", "url": "http://u:p@host/mcp"}})


def test_allow_and_deny_entries_are_globs_matched_against_original_names() -> None:
    tools = [
        types.Tool(name=n, input_schema={"type": "object"}) for n in ("get_a", "get_b", "set_a", "Get_c")
    ]
    f = ToolFilter(ToolFilterConfig(allow=("get_*", "set_?"), deny=("*_b",)))
    assert [t.name for t in f.apply(tools)] == ["get_a", "set_a"]  # case-sensitive: Get_c is hidden
    assert f.resolve("get_a") == "get_a"
    assert f.resolve("get_b") is None
    assert f.resolve("Get_c") is None


def test_the_gateway_filter_and_the_proxy_allow_list_are_one_rule() -> None:
    from api.vmcp_config import WorkloadToolConfig  # noqa: PLC0415

    proxy = ToolFilter(ToolFilterConfig(allow=("a", "b*")))
    gateway = ToolFilter.for_workload(WorkloadToolConfig(workload="w", filter=["a", "b*"]))
    assert _names(proxy) == _names(gateway) == ["a", "b"]
    assert _names(ToolFilter.for_workload(WorkloadToolConfig(workload="w", exclude_all=True))) == []
    assert _names(ToolFilter.for_workload(WorkloadToolConfig(workload="w"))) == ["a", "b", "c"]
