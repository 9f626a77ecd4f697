"""The Cedar policy compiler and engine (real ``cedarpy``): errors that name the policy and the line,
decisions, the entity model, the cache, and list batches deciding as single requests do."""

from __future__ import annotations

import json

import pytest
from mcp.shared.exceptions import MCPError
from mcp_types import Tool
from prometheus_client import CollectorRegistry

from api.authz_config import CedarConfig, PolicyError, compile_policies
from gateway.authz.enforce import Authorization
from gateway.authz.engine import PolicyEngine
from gateway.authz.entities import Item, arguments_attributes, cedar_value, principal_for
from gateway.observability import Auditor

READERS = (
    'permit(principal in THVGroup::"readers", action == Action::"call_tool", resource) '
    "when { resource has readOnlyHint && resource.readOnlyHint };"
)
READ = Item("tool", "read_file", "files", (("readOnlyHint", True),))
DELETE = Item("tool", "delete_file", "files", (("destructiveHint", True),))


def _entity(kind: str, name: str, group: str) -> str:
    parent = {"type": "THVGroup", "id": group}
    return json.dumps([{"uid": {"type": kind, "id": name}, "attrs": {}, "parents": [parent]}])


def _engine(*policies: str, **options: str) -> PolicyEngine:
    return PolicyEngine(CedarConfig(policies=policies, **options))


def _who(engine: PolicyEngine, **claims: object) -> object:
    return principal_for({"sub": "alice", **claims}, engine.config, engine.compiled.attributes)


@pytest.mark.parametrize(
    ("policies", "expected"),
    [
        (
            ["permit(principal, action, resource)\n  when { principal.x == };"],
            "policies[0] line 2: unexpected",
        ),
        (
            [
                "permit(principal, action, resource);",
                'forbid(\n principal,\n action == Action::"call_tol",\n resource);',
            ],
            'policies[1] line 3: unknown action Action::"call_tol"',
        ),
        (
            ['permit(principal in Group::"x", action, resource);'],
            "policies[0] line 1: unknown entity type 'Group'",
        ),
        (
            ['permit(principal, action, resource)\nunless { action == Action::"tools/call" };'],
            'policies[0] line 2: unknown action Action::"tools/call" in a condition',
        ),
        (["permit(principal, action, resource)\nwhen { principal.claim_a = 1 };"], "policies[0] line 2: '='"),
        (["permit(principal == ?principal, action, resource);"], "policies[0]: templates"),
        (["// only a comment"], "policies[0]: holds no policy"),
    ],
)
def test_a_bad_policy_is_refused_naming_the_policy_and_the_line(policies: list[str], expected: str) -> None:
    with pytest.raises(
        PolicyError, match=expected.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")
    ):
        compile_policies(CedarConfig(policies=tuple(policies)))


def test_bad_static_entities_are_refused() -> None:
    with pytest.raises(PolicyError, match="entitiesJson"):
        compile_policies(CedarConfig(policies=("permit(principal, action, resource);",), entities_json="{"))


def test_entity_types_of_the_static_entities_and_the_group_type_are_known() -> None:
    entities = '[{"uid": {"type": "Team", "id": "t"}, "attrs": {}, "parents": []}]'
    compile_policies(
        CedarConfig(policies=('permit(principal in Team::"t", action, resource);',), entities_json=entities)
    )
    compile_policies(
        CedarConfig(policies=('permit(principal in Role::"r", action, resource);',), group_entity_type="Role")
    )


def test_group_members_may_call_read_only_tools_only() -> None:
    engine = _engine(READERS)
    reader = _who(engine, groups=["readers"])
    assert engine.decide(reader, READ, {}).allowed
    assert engine.decide(reader, READ, {}).policies == ("policies[0]",)
    assert not engine.decide(reader, DELETE, {}).allowed
    assert not engine.decide(_who(engine, groups=["writers"]), READ, {}).allowed
    assert engine.decide(_who(engine, roles=["readers"]), READ, {}).allowed  # a default group claim


def test_a_configured_group_claim_replaces_the_default_ones() -> None:
    engine = _engine(READERS, group_claim_name="https://example.com/groups")
    assert engine.decide(_who(engine, **{"https://example.com/groups": ["readers"]}), READ, {}).allowed
    assert not engine.decide(_who(engine, groups=["readers"]), READ, {}).allowed


def test_static_entities_give_groups_their_parents() -> None:
    entities = _entity("THVGroup", "eng", "staff")
    engine = _engine('permit(principal in THVGroup::"staff", action, resource);', entities_json=entities)
    assert engine.decide(_who(engine, groups=["eng"]), READ, {}).allowed
    assert not engine.decide(_who(engine, groups=["ops"]), READ, {}).allowed


def test_a_static_entity_for_the_principal_keeps_its_parents() -> None:
    entities = _entity("Client", "alice", "admins")
    engine = _engine('permit(principal in THVGroup::"admins", action, resource);', entities_json=entities)
    assert engine.decide(_who(engine), READ, {}).allowed


def test_a_forbid_wins_and_is_named() -> None:
    engine = _engine(
        '@id("everyone") permit(principal, action, resource);',
        '@id("no-destructive") forbid(principal, action, resource) '
        "when { resource has destructiveHint && resource.destructiveHint };",
    )
    who = _who(engine)
    assert engine.decide(who, READ, {}).policies == ("everyone",)
    decision = engine.decide(who, DELETE, {})
    assert not decision.allowed
    assert decision.reason == "forbidden by no-destructive"


def test_a_missing_claim_denies_with_the_engine_error_as_reason() -> None:
    engine = _engine(
        'permit(principal, action, resource) when { principal.claim_email like "*@example.com" };'
    )
    assert engine.decide(_who(engine, email="a@example.com"), READ, {}).allowed
    assert not engine.decide(_who(engine, email="a@evil.com"), READ, {}).allowed
    missing = engine.decide(_who(engine), READ, {})
    assert not missing.allowed
    assert "claim_email" in missing.reason


def test_no_sub_and_anonymous() -> None:
    engine = _engine("permit(principal is Client, action, resource);")
    nosub = principal_for({"email": "x"}, engine.config, engine.compiled.attributes)
    assert not engine.decide(nosub, READ, {}).allowed
    assert "no sub claim" in engine.decide(nosub, READ, {}).reason
    anonymous = principal_for(None, engine.config, engine.compiled.attributes)
    assert not engine.decide(anonymous, READ, {}).allowed
    open_engine = _engine('permit(principal is Anonymous, action, resource == Tool::"read_file");')
    anonymous = principal_for(None, open_engine.config, open_engine.compiled.attributes)
    assert open_engine.decide(anonymous, READ, {}).allowed
    assert not open_engine.decide(anonymous, DELETE, {}).allowed


def test_arguments_are_context_and_resource_attributes() -> None:
    engine = _engine(
        'permit(principal, action, resource == Tool::"deploy") '
        'when { context.arg_env == "staging" && resource.arg_env == "staging" };'
    )
    deploy = Item("tool", "deploy", "files")
    read = engine.compiled.attributes
    assert engine.decide(_who(engine), deploy, arguments_attributes({"env": "staging"}, read)).allowed
    assert not engine.decide(_who(engine), deploy, arguments_attributes({"env": "prod"}, read)).allowed
    assert not engine.decide(_who(engine), deploy, {}).allowed


def test_server_scope_is_the_items_mcp_parent() -> None:
    engine = _engine('permit(principal, action, resource in MCP::"files");')
    assert engine.decide(_who(engine), READ, {}).allowed
    assert not engine.decide(_who(engine), Item("tool", "read_file", "other"), {}).allowed


def test_claims_no_policy_reads_do_not_split_the_cache() -> None:
    engine = _engine(READERS)
    first = _who(engine, groups=["readers"], iat=1, jti="a")
    second = _who(engine, groups=["readers"], iat=2, jti="b")
    assert first.key == second.key  # type: ignore[attr-defined]


def test_a_list_batch_decides_as_single_requests() -> None:
    engine = _engine(READERS, 'permit(principal, action, resource == Tool::"echo");')
    who = _who(engine, groups=["readers"])
    items = [READ, DELETE, Item("tool", "echo", "files"), Item("prompt", "p", "files"), READ]
    batch = [d.allowed for d in engine.decide_many(who, items)]
    fresh = _engine(READERS, 'permit(principal, action, resource == Tool::"echo");')
    assert (
        batch == [fresh.decide(who, item, {}).allowed for item in items] == [True, False, True, False, True]
    )


def test_values_a_client_sends_never_become_entity_references() -> None:
    assert cedar_value({"__entity": {"type": "THVGroup", "id": "admins"}, "a": 1}) == {"a": 1}
    assert cedar_value(1.5) is None
    assert cedar_value(2.0) == 2
    assert cedar_value(2**70) is None
    engine = _engine('permit(principal in THVGroup::"admins", action, resource);')
    sneaky = _who(engine, groups=[{"__entity": {"type": "THVGroup", "id": "admins"}}])
    assert not engine.decide(sneaky, READ, {}).allowed


def test_a_reload_that_does_not_compile_keeps_the_policies_in_force() -> None:
    authz = Authorization(CedarConfig(policies=(READERS,)), "files")
    reader = {"state": {"mcp_auth_claims": {"sub": "bob", "groups": ["readers"]}}}
    authz.check(authz.principal(reader), READ)  # allowed: no denial raised
    assert not authz.reload(CedarConfig(policies=("permit(principal, action, resource",)))
    authz.check(authz.principal(reader), READ)  # the previous set still decides
    assert authz.reload(CedarConfig(policies=("forbid(principal, action, resource);",)))
    with pytest.raises(MCPError) as denied:
        authz.check(authz.principal(reader), READ)
    assert (denied.value.error.code, denied.value.error.message) == (403, "Unauthorized")


def test_turning_authorization_on_with_policies_that_do_not_compile_denies_everything() -> None:
    broken = CedarConfig(policies=("permit(principal, action, resource",))
    authz = Authorization.fail_closed(broken, "files", auditor=Auditor(), registry=CollectorRegistry())
    with pytest.raises(MCPError):
        authz.check(authz.principal(None), READ)


LISTED = [
    {"name": "read_file", "annotations": {"readOnlyHint": True, "title": "Read"}},
    {"name": "delete_file", "annotations": {"destructiveHint": True}},
    {"name": "echo"},
    {"name": "", "annotations": {"readOnlyHint": True}},
    {"annotations": {"readOnlyHint": True}},
    {"name": "deploy", "annotations": "not an object"},
]
LIST_POLICIES = (
    READERS,
    'permit(principal, action, resource == Tool::"echo");',
    'forbid(principal, action, resource == Tool::"");',
)


def _as_models(entries: list[dict[str, object]]) -> list[Tool]:
    return [
        Tool.model_validate({"inputSchema": {"type": "object"}, **e})
        for e in entries
        if "name" in e and isinstance(e.get("annotations", {}), dict)
    ]


def test_a_filtered_list_holds_exactly_the_entries_single_requests_allow() -> None:
    """Raw JSON entries (the fast path) and SDK models (the SDK path, the gateway) alike; an entry without
    a name is never shown; a tool named "" keeps its own decision (a policy names it)."""
    authz = Authorization(CedarConfig(policies=LIST_POLICIES), "files")
    reader = authz.principal({"state": {"mcp_auth_claims": {"sub": "bob", "groups": ["readers"]}}})
    shown = authz.filter_result(reader, "tools/list", {"tools": LISTED, "nextCursor": "c"})
    assert [t.get("name") for t in shown["tools"]] == ["read_file", "echo"]
    assert shown["nextCursor"] == "c"
    fresh = Authorization(CedarConfig(policies=LIST_POLICIES), "files")
    models = _as_models(LISTED)
    assert [t.name for t in fresh.visible(reader, "tools", models)] == ["read_file", "echo"]
    for tool in models:  # what a list shows is what a call is allowed
        item = fresh.tool(tool.name, tool)
        allowed = fresh.engine.decide(reader, item, {}).allowed if item is not None else False
        assert allowed is (tool.name in {"read_file", "echo"}), tool.name


def test_a_gateway_list_decides_each_entry_with_its_own_backend() -> None:
    authz = Authorization(CedarConfig(policies=('permit(principal, action, resource in MCP::"b1");',)), "gw")
    anyone = authz.principal({"state": {"mcp_auth_claims": {"sub": "bob"}}})
    entries = [{"name": "a", "backend": "b1"}, {"name": "b", "backend": "b2"}, {"name": "c", "backend": "b1"}]
    shown = authz.visible(anyone, "tools", entries, lambda e: e["backend"])
    assert [e["name"] for e in shown] == ["a", "c"]
