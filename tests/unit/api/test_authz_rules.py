"""``authzConfig`` on the three workload kinds: checked when read (Accepted=False naming the policy and
the line), rendered into the proxy's and the gateway's config files."""

from __future__ import annotations

from typing import Any

import pytest

from api.authz import AuthzConfigRef, cedar_config
from api.base import GROUP_VERSION
from api.notices import notices
from api.validation import parse_and_validate
from controller.reconcilers.status import StatusBuilder, accept

GOOD = 'permit(principal in THVGroup::"readers", action == Action::"call_tool", resource);'
KINDS = [
    ("MCPServer", {"image": "i"}, "spec.authzConfig", lambda a: {"authzConfig": a}),
    ("MCPRemoteProxy", {"remoteUrl": "https://a.example"}, "spec.authzConfig", lambda a: {"authzConfig": a}),
    (
        "VirtualMCPServer",
        {"groupRef": {"name": "g"}},
        "spec.incomingAuth.authzConfig",
        lambda a: {"incomingAuth": {"type": "anonymous", "authzConfig": a}},
    ),
]


def _parsed(kind: str, spec: dict[str, Any]) -> tuple[Any, list[Any]]:
    return parse_and_validate(
        {"apiVersion": GROUP_VERSION, "kind": kind, "metadata": {"name": "x"}, "spec": spec}
    )


def _problems(kind: str, base: dict[str, Any], place: Any, authz: dict[str, Any]) -> list[str]:
    _, problems = _parsed(kind, {**base, **place(authz)})
    return [str(p) for p in problems]


@pytest.mark.parametrize(("kind", "base", "field", "place"), KINDS)
def test_valid_inline_policies_are_accepted(kind: str, base: dict[str, Any], field: str, place: Any) -> None:
    assert _problems(kind, base, place, {"type": "inline", "inline": {"policies": [GOOD]}}) == []


@pytest.mark.parametrize(("kind", "base", "field", "place"), KINDS)
@pytest.mark.parametrize(
    ("authz", "expected"),
    [
        (
            {
                "type": "inline",
                "inline": {"policies": [GOOD, "permit(principal, action, resource)\n when { x };"]},
            },
            ".inline.policies[1]: line 2: ",
        ),
        (
            {
                "type": "inline",
                "inline": {"policies": ['forbid(principal, action == Action::"call", resource);']},
            },
            '.inline.policies[0]: line 1: unknown action Action::"call"',
        ),
        (
            {"type": "inline", "inline": {"policies": ['permit(principal in Team::"a", action, resource);']}},
            ".inline.policies[0]: line 1: unknown entity type 'Team'",
        ),
        ({"type": "inline", "inline": {"policies": [GOOD], "entitiesJson": "{"}}, ".inline.entitiesJson: "),
        ({"type": "inline"}, ".inline: type is inline"),
        ({"type": "configMap"}, ".configMap: type is configMap; set configMap.name"),
        (
            {"type": "inline", "inline": {"policies": [GOOD], "primaryUpstreamProvider": "github"}},
            ".inline.primaryUpstreamProvider: is not supported yet",
        ),
    ],
)
def test_unusable_policies_are_refused_naming_the_policy_and_line(
    kind: str, base: dict[str, Any], field: str, place: Any, authz: dict[str, Any], expected: str
) -> None:
    problems = _problems(kind, base, place, authz)
    assert len(problems) == 1 and problems[0].startswith(field + expected), problems


def test_rendered_with_the_group_settings() -> None:
    ref = AuthzConfigRef.model_validate(
        {
            "type": "inline",
            "inline": {"policies": [GOOD], "entitiesJson": "[]"},
            "groupClaimName": "https://example.com/groups",
            "groupEntityType": "Team",
        }
    )
    config = cedar_config(ref)
    assert config is not None
    assert config.policies == (GOOD,)
    assert (config.group_claim_name, config.group_entity_type, config.role_claim_name) == (
        "https://example.com/groups",
        "Team",
        None,
    )


def test_a_config_map_reference_is_accepted_its_content_checked_when_read() -> None:
    kind, base, _, place = KINDS[0]
    assert _problems(kind, base, place, {"type": "configMap", "configMap": {"name": "p"}}) == []


@pytest.mark.parametrize(("kind", "base", "field", "place"), KINDS)
def test_a_permit_naming_an_unknown_action_is_accepted_as_in_toolhive_and_noticed(
    kind: str, base: dict[str, Any], field: str, place: Any
) -> None:
    never = 'permit(\n  principal,\n  action == Action::"tools/call",\n  resource);'
    spec = {**base, **place({"type": "inline", "inline": {"policies": [GOOD, never]}})}
    obj, problems = _parsed(kind, spec)
    assert problems == [] and obj is not None
    assert [str(p) for p in notices(obj)] == [
        f'{field}.inline.policies[1]: line 3: unknown action Action::"tools/call": requests never carry it, '
        "so this permit never matches it (as in ToolHive) and grants nothing by it; actions are call_tool, "
        "get_prompt, list_prompts, list_resources, list_tools, read_resource "
        '(a tool call is Action::"call_tool")'
    ]
    forbid = never.replace("permit", "forbid")
    refused = _problems(kind, base, place, {"type": "inline", "inline": {"policies": [GOOD, forbid]}})
    assert refused == [
        f'{field}.inline.policies[1]: line 3: unknown action Action::"tools/call" in a forbid: '
        "it would never match, so it would forbid nothing (ToolHive accepts it and forbids nothing); "
        "actions are call_tool, get_prompt, list_prompts, list_resources, list_tools, read_resource"
    ]


def test_the_never_matching_permit_is_in_the_accepted_condition_and_one_warning_event() -> None:
    never = {
        "type": "inline",
        "inline": {"policies": ['permit(principal, action == Action::"x", resource);']},
    }
    obj, _ = _parsed("MCPServer", {"image": "i", "authzConfig": never})
    assert obj is not None
    builder = StatusBuilder([], 1)
    accept(builder, notices(obj), "the spec is valid")
    (accepted,) = builder.conditions
    assert (accepted["status"], accepted["reason"]) == ("True", "AcceptedWithWarnings")
    assert accepted["message"].startswith(
        "the spec is valid, with warnings: spec.authzConfig.inline.policies[0]"
    )
    assert [e[:2] for e in builder.events] == [("Warning", "AcceptedWithWarnings")]
    again = StatusBuilder(builder.conditions, 1)
    accept(again, notices(obj), "the spec is valid")
    assert again.events == []  # steady state: no repeated Event
