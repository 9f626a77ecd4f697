"""The optimizer's keyword ranking (BM25 over tool name, description and parameter names) and its index's
lifetime."""

from __future__ import annotations

from typing import Any

import pytest
from mcp_types import Tool

from api.vmcp_config import VMCPConfig
from gateway.vmcp.gateway import VirtualGateway
from gateway.vmcp.optimizer import ToolOptimizer
from gateway.vmcp.tool_search import ToolIndex, stem, terms


def tool(name: str, description: str = "", *parameters: str) -> Tool:
    schema: dict[str, Any] = {"type": "object", "properties": {p: {"type": "string"} for p in parameters}}
    return Tool(name=name, description=description, input_schema=schema)


CATALOGUE = (
    tool("github_list_issues", "List the issues of a GitHub repository.", "owner", "repo", "state"),
    tool("github_create_issue", "Open a new issue in a GitHub repository.", "owner", "repo", "title"),
    tool("github_get_file", "Read a file from a GitHub repository.", "owner", "repo", "path"),
    tool("weather_forecast", "Forecast for a city over the next days.", "city", "days"),
    tool("calc_add", "Add two integers.", "a", "b"),
    tool("fs_read_file", "Read a local file.", "path"),
    tool("convertUnits", "Convert a quantity between measurement units.", "value", "fromUnit", "toUnit"),
    tool("slack_post_message", "Send a message to a Slack channel.", "channel", "text"),
)


def names(found: list[Tool]) -> list[str]:
    return [t.name for t in found]


@pytest.fixture(scope="module")
def index() -> ToolIndex:
    return ToolIndex.build(CATALOGUE)


def test_a_word_of_the_description_finds_the_tool(index: ToolIndex) -> None:
    assert names(index.search("forecast", 8)) == ["weather_forecast"]
    assert names(index.search("sum of two integers", 8)) == ["calc_add"]


def test_a_parameter_name_finds_the_tool(index: ToolIndex) -> None:
    assert names(index.search("channel", 8)) == ["slack_post_message"]


def test_camel_case_names_and_plurals_match_their_words(index: ToolIndex) -> None:
    assert names(index.search("convert unit", 8)) == ["convertUnits"]
    assert names(index.search("send messages", 8)) == ["slack_post_message"]


def test_more_matching_words_rank_higher(index: ToolIndex) -> None:
    found = names(index.search("list open issues of a github repository", 8))
    assert found[0] == "github_list_issues"
    assert set(found[:3]) == {"github_list_issues", "github_create_issue", "github_get_file"}


def test_a_word_in_the_name_outweighs_the_same_word_in_the_description(index: ToolIndex) -> None:
    catalogue = (tool("notes_search", "Find notes."), tool("notes_find", "Search notes by text."))
    assert names(ToolIndex.build(catalogue).search("search", 8)) == ["notes_search", "notes_find"]


def test_rare_words_count_more_than_common_ones(index: ToolIndex) -> None:
    # "file" is in two tools, "local" in one: the tool with both ranks first, then the other "file" one.
    assert names(index.search("local file", 8))[:2] == ["fs_read_file", "github_get_file"]


def test_the_limit_caps_the_answer_and_ties_break_by_name(index: ToolIndex) -> None:
    assert len(index.search("github", 2)) == 2
    assert index.search("github", 0) == []
    twins = ToolIndex.build((tool("b_echo", "Echo."), tool("a_echo", "Echo."), tool("c_echo", "Echo.")))
    assert names(twins.search("echo", 2)) == ["a_echo", "b_echo"]


def test_no_matching_word_finds_nothing(index: ToolIndex) -> None:
    assert index.search("kubernetes", 8) == []
    assert index.search("the a of to", 8) == []  # only stop words
    assert index.search("", 8) == []


def test_allowed_hides_tools_from_the_answer(index: ToolIndex) -> None:
    found = index.search("file", 8, allowed=lambda t: not t.name.startswith("github_"))
    assert names(found) == ["fs_read_file"]


def test_an_empty_catalogue_finds_nothing() -> None:
    assert ToolIndex.build(()).search("anything", 8) == []


@pytest.mark.parametrize(
    ("word", "stemmed"),
    [
        ("issues", "issue"),
        ("repositories", "repository"),
        ("searches", "search"),
        ("echoes", "echo"),
        ("running", "runn"),
        ("added", "add"),
        ("status", "status"),
        ("class", "class"),
        ("add", "add"),
    ],
)
def test_stem_strips_plural_and_verb_endings(word: str, stemmed: str) -> None:
    assert stem(word) == stemmed


def test_terms_split_names_and_drop_stop_words() -> None:
    found = terms("get_HTTPServer-status for listIssues in S3 v2, 10 times")
    assert found == ["http", "server", "status", "list", "issue", "s3", "v2", "10", "time"]


async def test_the_optimizer_rebuilds_its_index_only_when_the_merged_list_changes() -> None:
    async def catalogue(_: object) -> tuple[tuple[Tool, ...], list[Tool]]:
        return CATALOGUE, list(CATALOGUE)

    optimizer = ToolOptimizer(VirtualGateway(VMCPConfig(name="gw")), catalogue, lambda _: None)
    first = optimizer.index(CATALOGUE)
    assert optimizer.index(CATALOGUE) is first
    assert optimizer.index(tuple(list(CATALOGUE))) is first  # an equal list recomputed by the view: kept
    grown = (*CATALOGUE, tool("calc_multiply", "Multiply two integers.", "a", "b"))
    rebuilt = optimizer.index(grown)
    assert rebuilt is not first
    assert names(rebuilt.search("multiply", 8)) == ["calc_multiply"]
