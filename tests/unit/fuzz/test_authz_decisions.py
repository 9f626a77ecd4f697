"""Random Cedar policy sets, principals and items: the data plane's engine (policies sliced per principal
and action, items folded into the kinds the policies can tell apart, decisions cached) decides exactly as
Cedar does with the whole policy set and every entity, for single requests and list batches alike."""

from __future__ import annotations

import json
from typing import Any

import cedarpy
from hypothesis import given, settings
from hypothesis import strategies as st

from api.authz_config import CedarConfig
from gateway.authz.engine import PolicyEngine
from gateway.authz.entities import Item, Principal, arguments_attributes, principal_for, resource_entity

GROUPS = ("eng", "ops", "staff", "readers")
TOOLS = ("read_file", "delete_file", "echo", "deploy")
SERVERS = ("files", "git")
USERS = ("alice", "bob")
HINTS = ("readOnlyHint", "destructiveHint")
STATIC = json.dumps(
    [
        {
            "uid": {"type": "THVGroup", "id": "eng"},
            "attrs": {},
            "parents": [{"type": "THVGroup", "id": "staff"}],
        }
    ]
)

principal_scopes = st.sampled_from(
    [
        "principal",
        *(f'principal == Client::"{u}"' for u in USERS),
        *(f'principal in THVGroup::"{g}"' for g in GROUPS),
        "principal is Client",
        "principal is Anonymous",
        'principal is Client in THVGroup::"staff"',
    ]
)
action_scopes = st.sampled_from(
    [
        "action",
        'action == Action::"call_tool"',
        'action == Action::"get_prompt"',
        'action in [Action::"call_tool", Action::"read_resource"]',
    ]
)
resource_scopes = st.sampled_from(
    [
        "resource",
        *(f'resource == Tool::"{t}"' for t in TOOLS),
        *(f'resource in MCP::"{s}"' for s in SERVERS),
        "resource is Tool",
        "resource is Prompt",
    ]
)
conditions = st.sampled_from(
    [
        "",
        " when { resource has readOnlyHint && resource.readOnlyHint }",
        " when { resource has destructiveHint && resource.destructiveHint }",
        ' when { principal.claim_email like "*@example.com" }',
        ' when { context has arg_env && context.arg_env == "staging" }',
        ' unless { resource.name like "delete*" }',
        " when { principal.claim_level > 2 }",
    ]
)
policies = st.builds(
    lambda effect, p, a, r, c: f"{effect}({p}, {a}, {r}){c};",
    st.sampled_from(["permit", "permit", "forbid"]),
    principal_scopes,
    action_scopes,
    resource_scopes,
    conditions,
)
tokens = st.fixed_dictionaries(
    {"sub": st.sampled_from(USERS)},
    optional={
        "groups": st.lists(st.sampled_from(GROUPS), max_size=2),
        "email": st.sampled_from(["a@example.com", "b@evil.test"]),
        "level": st.integers(0, 5),
    },
)
"""The claims of a token (beyond the issuer's own)."""
claims = st.one_of(st.none(), tokens)
items = st.builds(
    Item,
    st.sampled_from(["tool", "tool", "prompt", "resource"]),
    st.sampled_from(TOOLS),
    st.sampled_from(SERVERS),
    st.lists(st.tuples(st.sampled_from(HINTS), st.booleans()), max_size=2, unique_by=lambda h: h[0]).map(
        tuple
    ),
)
arguments = st.one_of(st.just({}), st.fixed_dictionaries({"env": st.sampled_from(["staging", "prod"])}))


def _cedar(text: list[str], who: Principal, item: Item, args: dict[str, Any]) -> bool:
    """Cedar's own answer: the whole set, every entity, every claim."""
    entity = resource_entity(item, args)
    entities = [*json.loads(STATIC), who.entity, entity]
    request = {
        "principal": who.uid,
        "action": {"type": "Action", "id": item.action},
        "resource": entity["uid"],
        "context": {**who.context, **args},
    }
    return cedarpy.is_authorized(request, "\n".join(text), entities).allowed


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    st.lists(policies, min_size=1, max_size=6),
    claims,
    st.lists(st.tuples(items, arguments), min_size=1, max_size=6),
)
def test_the_engine_decides_as_cedar_does(
    text: list[str], token: dict[str, Any] | None, asked: list[Any]
) -> None:
    engine = PolicyEngine(CedarConfig(policies=tuple(text), entities_json=STATIC))
    read = engine.compiled.attributes
    who = principal_for(token, engine.config, read)
    full = principal_for(token, engine.config, frozenset(f"claim_{k}" for k in token or {}))
    listed = engine.decide_many(who, [item for item, _ in asked])
    for (item, args), from_list in zip(asked, listed, strict=True):
        expected = _cedar(text, full, item, arguments_attributes(args, frozenset({"arg_env"})))
        assert engine.decide(who, item, arguments_attributes(args, read)).allowed is expected, (item, args)
        assert engine.decide(who, item, arguments_attributes(args, read)).allowed is expected  # cached
        if not args:
            assert from_list.allowed is _cedar(text, full, item, {}), item
