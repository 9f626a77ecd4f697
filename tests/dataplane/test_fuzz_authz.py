"""Random Cedar policy sets and random requests through the proxy's fast path and the gateway: the data
plane never answers 5xx, and never lets through a call, get or read that Cedar (the whole policy set, every
entity and claim) denies, nor lists an item Cedar denies.

Hypothesis only draws the inputs (derandomized, a fixed number of policy sets and requests); each drawn
policy set is served by a fresh front in this event loop (``tests.support.authz``).
"""

from __future__ import annotations

import json
from typing import Any

import cedarpy
import httpx2
import pytest
from hypothesis import strategies as st

from api.authz_config import CedarConfig
from gateway.authz.entities import Item, arguments_attributes, principal_for, resource_entity
from tests.dataplane.fastpathutil import request
from tests.dataplane.fuzzutil import draw
from tests.support.authz import SERVER, front
from tests.unit.fuzz.test_authz_decisions import policies, tokens

pytestmark = pytest.mark.slow

HINTS = {"read_file": (("readOnlyHint", True),), "delete_file": (("destructiveHint", True),)}
NAMES = ("read_file", "delete_file", "echo", "deploy", "ghost")
REQUESTS = st.one_of(
    st.tuples(st.just("tools/list"), st.just({})),
    st.tuples(st.just("prompts/list"), st.just({})),
    st.tuples(
        st.just("tools/call"),
        st.builds(
            lambda name, env: {"name": name, "arguments": {"path": "/x", "text": "t", "env": env}},
            st.sampled_from(NAMES),
            st.sampled_from(["staging", "prod"]),
        ),
    ),
    st.tuples(
        st.just("prompts/get"),
        st.builds(lambda n: {"name": n, "arguments": {"name": "x"}}, st.sampled_from(["greeting", "ghost"])),
    ),
    st.tuples(st.just("resources/read"), st.just({"uri": "file:///notes.txt"})),
)
SETS = 4
REQUESTS_PER_SET = 25


def _cedar(
    text: tuple[str, ...], token: dict[str, Any] | None, item: Item, arguments: dict[str, Any]
) -> bool:
    config = CedarConfig(policies=text)
    who = principal_for(token, config, frozenset(f"claim_{k}" for k in token or {}))
    entity = resource_entity(item, arguments_attributes(arguments, frozenset(f"arg_{k}" for k in arguments)))
    asked = {
        "principal": who.uid,
        "action": {"type": "Action", "id": item.action},
        "resource": entity["uid"],
        "context": {**who.context, **{k: v for k, v in entity["attrs"].items() if k.startswith("arg_")}},
    }
    if who.error is not None:
        return False
    return cedarpy.is_authorized(asked, "\n".join(text), [who.entity, entity]).allowed


def _item(method: str, params: dict[str, Any]) -> Item:
    if method == "tools/call":
        return Item("tool", params["name"], SERVER, HINTS.get(params["name"], ()))
    if method == "prompts/get":
        return Item("prompt", params["name"], SERVER)
    return Item("resource", params["uri"], SERVER)


def _draw() -> list[tuple[tuple[str, ...], list[tuple[dict[str, Any] | None, str, dict[str, Any]]]]]:
    """The policy sets and, per set, (token claims, method, params) of each request (derandomized)."""
    drawn = st.tuples(
        st.lists(policies, min_size=1, max_size=5).map(tuple),
        st.lists(st.tuples(tokens, REQUESTS), min_size=REQUESTS_PER_SET, max_size=REQUESTS_PER_SET),
    )
    return [(text, [(c, m, p) for c, (m, p) in asked]) for text, asked in draw(drawn, SETS)]


@pytest.mark.parametrize("path", ["fast", "gateway"])
async def test_random_policies_never_5xx_and_never_allow_what_cedar_denies(path: str) -> None:
    for text, asked in _draw():
        authz = {"policies": list(text)}
        async with front(path, authz) as f, httpx2.AsyncClient(timeout=30) as http:
            for token_claims, method, params in asked:
                body, headers = request(method, params)
                headers["authorization"] = f"Bearer {f.issuer.mint(**(token_claims or {}))}"
                response = await http.post(f"{f.url}/mcp", json=body, headers=headers)
                assert response.status_code < 500, (text, method, params, response.text)
                answer = response.json()
                if method.endswith("/list"):
                    key = "tools" if method == "tools/list" else "prompts"
                    kind = "tool" if key == "tools" else "prompt"
                    for entry in answer["result"][key]:
                        item = Item(kind, entry["name"], SERVER, HINTS.get(entry["name"], ()))
                        assert _cedar(text, token_claims, item, {}), (text, token_claims, entry["name"])
                    continue
                allowed = _cedar(text, token_claims, _item(method, params), params.get("arguments") or {})
                if not allowed:
                    assert answer.get("error", {}).get("code") == 403, (
                        text,
                        token_claims,
                        method,
                        params,
                        answer,
                    )
                elif "result" in answer and not answer["result"].get("isError"):
                    assert allowed
                json.dumps(answer)  # a well-formed JSON-RPC answer either way
