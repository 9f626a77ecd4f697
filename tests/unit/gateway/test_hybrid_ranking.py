"""The optimizer's hybrid ranking (ToolHive's: a semantic share of the places, a distance cut-off on the
semantic side only, semantic matches first) and how ``find_tool`` uses it, the embedding service's
endpoint and answers read as documented."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import httpx2
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mcp_types import Tool

from api.vmcp_config import OptimizerConfig, VMCPConfig
from gateway.backends.embeddings import EmbeddingEndpoint, EmbeddingError, decode_answer
from gateway.vmcp.gateway import VirtualGateway
from gateway.vmcp.hybrid_ranking import cosine_distance, merge, nearest, semantic_share, tool_text, unit
from gateway.vmcp.optimizer import ToolOptimizer


def tool(name: str, description: str = "") -> Tool:
    return Tool(name=name, description=description, input_schema={"type": "object"})


def names(tools: Sequence[Tool]) -> list[str]:
    return [t.name for t in tools]


@pytest.mark.parametrize(
    ("limit", "ratio", "share"),
    [
        (8, 0.5, 4),
        (8, 0.0, 0),
        (8, 1.0, 8),
        (10, 0.7, 7),
        (5, 0.5, 3),
        (3, 0.5, 2),
        (1, 0.4, 0),
        (2, 0.25, 1),
    ],
)
def test_the_semantic_share_rounds_half_up_as_toolhive_does(limit: int, ratio: float, share: int) -> None:
    assert semantic_share(limit, ratio) == share


def test_cosine_distance_is_zero_for_the_same_direction_and_two_for_the_opposite() -> None:
    a = unit((3.0, 4.0))
    assert cosine_distance(a, unit((6.0, 8.0))) == pytest.approx(0.0)
    assert cosine_distance(a, unit((-3.0, -4.0))) == pytest.approx(2.0)
    assert cosine_distance(a, unit((-4.0, 3.0))) == pytest.approx(1.0)
    assert cosine_distance(a, unit((1.0, 2.0, 3.0))) is None  # another model's vector: not comparable
    assert cosine_distance(a, unit((0.0, 0.0))) == 1.0


VECTORS = {
    "time_now": unit((1.0, 0.1, 0.0)),
    "time_convert": unit((0.8, 0.6, 0.0)),
    "calc_add": unit((0.0, 1.0, 0.0)),
    "git_log": unit((-1.0, 0.0, 0.0)),
}
CANDIDATES = [(tool(n), v) for n, v in VECTORS.items()]


def test_nearest_orders_by_distance_and_cuts_at_the_threshold() -> None:
    query = unit((1.0, 0.0, 0.0))
    assert names(nearest(query, CANDIDATES, threshold=2.0, limit=8)) == [
        "time_now",
        "time_convert",
        "calc_add",
        "git_log",
    ]
    assert names(nearest(query, CANDIDATES, threshold=1.0, limit=8)) == [
        "time_now",
        "time_convert",
        "calc_add",
    ]
    assert names(nearest(query, CANDIDATES, threshold=0.1, limit=8)) == ["time_now"]
    assert names(nearest(query, CANDIDATES, threshold=2.0, limit=2)) == ["time_now", "time_convert"]
    assert nearest(query, CANDIDATES, threshold=2.0, limit=0) == []


def test_merge_lists_semantic_matches_first_without_repeating_a_tool() -> None:
    semantic = [tool("b"), tool("a")]
    keyword = [tool("a"), tool("c"), tool("d")]
    assert names(merge(semantic, keyword, 8)) == ["b", "a", "c", "d"]
    assert names(merge(semantic, keyword, 3)) == ["b", "a", "c"]


@given(
    st.lists(st.sampled_from("abcdefg"), unique=True),
    st.lists(st.sampled_from("abcdefg"), unique=True),
    st.integers(min_value=0, max_value=10),
)
def test_merge_keeps_order_uniqueness_and_the_limit(
    semantic: list[str], keyword: list[str], limit: int
) -> None:
    merged = names(merge([tool(n) for n in semantic], [tool(n) for n in keyword], limit))
    assert len(merged) == len(set(merged)) <= limit
    assert merged == [n for n in dict.fromkeys([*semantic, *keyword])][:limit]


def test_a_tool_is_embedded_by_its_name_and_description() -> None:
    assert (
        tool_text(tool("git_log", "Shows the commit logs"))
        == "name: git_log description: Shows the commit logs"
    )


class FakeSemantic:
    """Stands for the embedding service's side: the tools it would answer, or None (it failed)."""

    def __init__(self, answer: list[str] | None) -> None:
        self.answer = answer
        self.limits: list[int] = []

    async def nearest(
        self,
        config: Any,
        tools: Sequence[Tool],
        allowed: Callable[[Tool], bool],
        description: str,
        limit: int,
    ) -> list[Tool] | None:
        self.limits.append(limit)
        if self.answer is None:
            return None
        return [t for t in tools if t.name in self.answer and allowed(t)][:limit]


CATALOGUE = (
    tool("time_now", "Get current time in a specific timezone"),
    tool("calc_add", "Add two integers."),
    tool("calc_multiply", "Multiply two integers."),
    tool("echo", "Echo the message back."),
)


async def _rank(
    config: OptimizerConfig, semantic: FakeSemantic, query: str, usable: Sequence[Tool]
) -> list[str]:
    async def catalogue(_: object) -> tuple[tuple[Tool, ...], list[Tool]]:
        return CATALOGUE, list(usable)

    optimizer = ToolOptimizer(VirtualGateway(VMCPConfig(name="gw")), catalogue, lambda _: None)
    optimizer.semantic = semantic  # type: ignore[assignment]
    return names(await optimizer._rank(config, CATALOGUE, usable, query, query))


async def test_find_tool_gives_the_semantic_share_to_meaning_and_the_rest_to_keywords() -> None:
    config = OptimizerConfig(
        max_tools_to_return=4, embedding_service="http://e", hybrid_search_semantic_ratio=0.5
    )
    semantic = FakeSemantic(["time_now", "echo"])
    assert await _rank(config, semantic, "integers", CATALOGUE) == [
        "time_now",
        "echo",
        "calc_add",
        "calc_multiply",
    ]
    assert semantic.limits == [2]
    # the caller's tools only, on both sides
    usable = [CATALOGUE[1], CATALOGUE[3]]
    assert await _rank(config, FakeSemantic(["time_now", "echo"]), "integers", usable) == ["echo", "calc_add"]


async def test_find_tool_answers_from_keywords_when_the_service_fails_or_has_no_share() -> None:
    config = OptimizerConfig(
        max_tools_to_return=4, embedding_service="http://e", hybrid_search_semantic_ratio=1.0
    )
    assert await _rank(config, FakeSemantic(None), "integers", CATALOGUE) == ["calc_add", "calc_multiply"]
    assert await _rank(config, FakeSemantic(["echo"]), "integers", CATALOGUE) == [
        "echo"
    ]  # all places semantic
    no_share = FakeSemantic(["echo"])
    keywords = config.model_copy(update={"hybrid_search_semantic_ratio": 0.0})
    assert await _rank(keywords, no_share, "integers", CATALOGUE) == ["calc_add", "calc_multiply"]
    no_service = FakeSemantic(["echo"])
    assert await _rank(OptimizerConfig(), no_service, "integers", CATALOGUE) == ["calc_add", "calc_multiply"]
    assert no_share.limits == no_service.limits == []  # the service is not even asked


def test_the_endpoint_takes_toolhives_defaults_and_the_key_from_the_environment() -> None:
    tei = EmbeddingEndpoint.from_config(
        OptimizerConfig(embedding_service="http://tei:8080/"), {"OPENAI_API_KEY": "k"}
    )
    assert tei is not None
    assert (tei.provider, tei.url, tei.timeout, tei.api_key) == ("tei", "http://tei:8080", 30.0, None)
    openai = OptimizerConfig(
        embedding_service="https://api.example.com/v1",
        embedding_provider="openai",
        embedding_model="m",
        embedding_headers={"x-cache-key": "c"},
        embedding_service_timeout=15.0,
    )
    endpoint = EmbeddingEndpoint.from_config(openai, {"OPENAI_API_KEY": "sk-1"})
    assert endpoint is not None
    assert (endpoint.api_key, dict(endpoint.headers), endpoint.timeout) == (
        "sk-1",
        {"x-cache-key": "c"},
        15.0,
    )
    assert "sk-1" not in repr(endpoint)
    keyless = EmbeddingEndpoint.from_config(openai, {})
    assert keyless is not None and keyless.api_key is None  # keyless in-cluster gateways: no Authorization
    assert EmbeddingEndpoint.from_config(OptimizerConfig(), {}) is None


def _response(status: int, body: Any) -> httpx2.Response:
    return httpx2.Response(status, json=body, request=httpx2.Request("POST", "http://e/embed"))


def test_answers_are_read_in_input_order_and_wrong_ones_refused() -> None:
    assert decode_answer("tei", _response(200, [[1, 0], [0, 1]]), 2) == [(1.0, 0.0), (0.0, 1.0)]
    shuffled = {"data": [{"index": 1, "embedding": [0, 1]}, {"index": 0, "embedding": [1, 0]}]}
    assert decode_answer("openai", _response(200, shuffled), 2) == [(1.0, 0.0), (0.0, 1.0)]
    for provider, status, body, says in [
        ("tei", 503, {"error": "loading"}, "answered HTTP 503"),
        ("tei", 200, [[1, 0]], "1 embeddings for 2 texts"),
        ("tei", 200, [[1, "x"], [0, 1]], "not an array of numbers"),
        (
            "openai",
            200,
            {"data": [{"index": 0, "embedding": [1]}, {"index": 0, "embedding": [1]}]},
            "answered 1 embeddings for 2 texts",
        ),
        ("openai", 200, {"data": [{"index": 5, "embedding": [1]}]}, "out of range"),
        ("openai", 200, {"error": "x"}, "answered no embeddings"),
    ]:
        with pytest.raises(EmbeddingError, match=says):
            decode_answer(provider, _response(status, body), 2)
    assert math.isclose(sum(x * x for x in unit((3.0, 4.0))), 1.0)
