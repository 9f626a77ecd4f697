"""Cedar authorization settings on the real API server: an MCPAuthzConfig (Accepted, configHash) referred
to by an MCPServer (``authzConfigRef``) reaches the proxy's config with a hash in the server's status and
rolls the proxy when it changes; bad policies are refused with Accepted=False naming the policy and the
line, and nothing is rendered or rolled."""

from __future__ import annotations

import json
from typing import Any

from tests.integration.reconcilers.test_virtualmcpserver import config_of, group, vmcp
from tests.support.kube import Api, condition
from tests.support.mcpserver import PLURAL, server
from tests.support.operator import Operator
from tests.support.waiting import eventually

READERS = (
    'permit(principal in THVGroup::"readers", action == Action::"call_tool", resource) '
    "when { resource has readOnlyHint && resource.readOnlyHint };"
)
HASH = "mcp-operator.dev/config-hash"


def authz_config(name: str, *policies: str) -> dict[str, Any]:
    return {
        "kind": "MCPAuthzConfig",
        "metadata": {"name": name},
        "spec": {"type": "cedarv1", "config": {"policies": list(policies)}},
    }


async def _proxy_config(kube: Api, name: str) -> dict[str, Any] | None:
    config_map = await kube.child("ConfigMap", f"{name}-proxy")
    return json.loads(config_map["data"]["proxy.json"]) if config_map else None


async def test_shared_policies_reach_the_proxy_and_a_change_rolls_it(operator: Operator, kube: Api) -> None:
    await kube.create("mcpauthzconfigs", authz_config("readers", READERS))
    await kube.create(
        PLURAL, server("guarded", transport="streamable-http", authzConfigRef={"name": "readers"})
    )

    async def rendered() -> dict[str, Any] | None:
        config = await _proxy_config(kube, "guarded")
        return config if config and config.get("authz") else None

    config = await eventually(rendered, what="the policies in the proxy config")
    assert config["authz"]["policies"] == [READERS]

    async def hash_reported() -> str | None:
        shared = await kube.get("mcpauthzconfigs", "readers")
        status = (await kube.get(PLURAL, "guarded")).get("status", {})
        wanted = shared.get("status", {}).get("configHash")
        return wanted if wanted and status.get("authzConfigHash") == wanted else None

    first = await eventually(hash_reported, what="status.authzConfigHash equal to the MCPAuthzConfig's")
    dep = await kube.child("Deployment", "guarded")
    rolled_from = dep["spec"]["template"]["metadata"]["annotations"][HASH]  # type: ignore[index]

    await kube.patch(
        "mcpauthzconfigs",
        "readers",
        {"spec": {"config": {"policies": ["forbid(principal, action, resource);"]}}},
    )

    async def rolled() -> bool:
        d = await kube.child("Deployment", "guarded")
        return d is not None and d["spec"]["template"]["metadata"]["annotations"][HASH] != rolled_from

    await eventually(rolled, what="the proxy rolled with the new policies")

    async def new_hash_reported() -> bool:
        # The config's own status and the server's are written by two reconciles: both may trail the roll.
        return await hash_reported() not in (None, first)

    await eventually(new_hash_reported, what="the new configHash in both statuses")


async def test_bad_policies_are_refused_naming_the_policy_and_line(operator: Operator, kube: Api) -> None:
    bad = 'forbid(principal,\n  action == Action::"call_tol",\n  resource);'
    await kube.create("mcpauthzconfigs", authz_config("typo", READERS, bad))

    async def refused(plural: str, name: str) -> str | None:
        cond = condition(await kube.get(plural, name), "Accepted")
        return cond["message"] if cond and cond["status"] == "False" else None

    message = await eventually(lambda: refused("mcpauthzconfigs", "typo"), what="Accepted=False")
    assert 'spec.config.policies[1]: line 2: unknown action Action::"call_tol"' in message

    spec = server("inline-bad", transport="streamable-http")
    spec["spec"]["authzConfig"] = {
        "type": "inline",
        "inline": {"policies": [READERS, "permit(principal, action, resource)\n when { };"]},
    }
    await kube.create(PLURAL, spec)
    message = await eventually(lambda: refused(PLURAL, "inline-bad"), what="Accepted=False")
    assert "spec.authzConfig.inline.policies[1]: line 2:" in message
    assert await kube.child("ConfigMap", "inline-bad-proxy") is None  # nothing rendered


async def test_a_gateway_enforces_shared_policies_and_is_never_rendered_without_them(
    operator: Operator, kube: Api
) -> None:
    await kube.create("mcpgroups", group("team"))
    await kube.create(
        "virtualmcpservers",
        vmcp("gw", "team", incomingAuth={"type": "anonymous", "authzConfigRef": {"name": "gw-policies"}}),
    )

    async def waiting() -> bool:
        cond = condition(await kube.get("virtualmcpservers", "gw"), "ResolvedRefs")
        return bool(cond and cond["status"] == "False" and "gw-policies" in cond["message"])

    await eventually(waiting, what="ResolvedRefs=False naming the missing MCPAuthzConfig")
    assert await config_of(kube, "gw") is None  # not rendered without its policies

    await kube.create("mcpauthzconfigs", authz_config("gw-policies", READERS))

    async def rendered() -> dict[str, Any] | None:
        config = await config_of(kube, "gw")
        return config if config and (config.get("incomingAuth") or {}).get("authz") else None

    config = await eventually(rendered, what="the policies in the gateway config")
    assert config["incomingAuth"]["authz"]["policies"] == [READERS]

    async def hash_reported() -> bool:
        shared = (await kube.get("mcpauthzconfigs", "gw-policies")).get("status", {}).get("configHash")
        return (
            bool(shared)
            and (await kube.get("virtualmcpservers", "gw")).get("status", {}).get("authzConfigHash") == shared
        )

    await eventually(hash_reported, what="status.authzConfigHash of the gateway")


async def test_policies_from_a_config_map_follow_it_and_a_bad_update_keeps_the_good_ones(
    operator: Operator, kube: Api
) -> None:
    ref = {"type": "configMap", "configMap": {"name": "policies"}, "groupClaimName": "teams"}
    await kube.create(PLURAL, server("mapped", transport="streamable-http", authzConfig=ref))

    async def waiting() -> bool:
        cond = condition(await kube.get(PLURAL, "mapped"), "ResolvedRefs")
        return bool(cond and cond["status"] == "False" and "ConfigMap 'policies'" in cond["message"])

    await eventually(waiting, what="ResolvedRefs=False naming the missing ConfigMap")
    assert await kube.child("ConfigMap", "mapped-proxy") is None  # not deployed without its policies

    def authz_file(*policies: str) -> dict[str, Any]:
        body = {
            "version": "1.0",
            "type": "cedarv1",
            "cedar": {"policies": list(policies), "entities_json": "[]"},
        }
        return {
            "kind": "ConfigMap",
            "metadata": {"name": "policies"},
            "data": {"authz.json": json.dumps(body)},
        }

    await kube.core.create_namespaced_config_map(kube.ns, authz_file(READERS))

    async def rendered() -> dict[str, Any] | None:
        config = await _proxy_config(kube, "mapped")
        return config if config and config.get("authz") else None

    config = await eventually(rendered, what="the ConfigMap's policies in the proxy config")
    assert config["authz"]["policies"] == [READERS] and config["authz"]["groupClaimName"] == "teams"

    async def resolved() -> bool:
        cond = condition(await kube.get(PLURAL, "mapped"), "ResolvedRefs")
        return bool(cond and cond["status"] == "True")

    await eventually(resolved, what="ResolvedRefs=True once the ConfigMap exists")

    await kube.core.patch_namespaced_config_map(
        "policies", kube.ns, authz_file(READERS, "permit(principal, action, resource)\n when { };")
    )

    async def refused() -> str | None:
        cond = condition(await kube.get(PLURAL, "mapped"), "ResolvedRefs")
        return (
            cond["message"]
            if cond and cond["status"] == "False" and "policies[1]" in cond["message"]
            else None
        )

    message = await eventually(refused, what="ResolvedRefs=False naming the bad policy")
    assert "ConfigMap 'policies' key 'authz.json': policies[1] line 2:" in message
    assert (await _proxy_config(kube, "mapped"))["authz"]["policies"] == [READERS]  # type: ignore[index]


async def test_a_permit_that_never_matches_is_accepted_with_a_warning(operator: Operator, kube: Api) -> None:
    never = 'permit(principal,\n  action == Action::"tools/call",\n  resource);'
    await kube.create("mcpauthzconfigs", authz_config("toolhive-style", READERS, never))

    async def warned() -> dict[str, Any] | None:
        cond = condition(await kube.get("mcpauthzconfigs", "toolhive-style"), "Accepted")
        return cond if cond and cond["reason"] == "AcceptedWithWarnings" else None

    accepted = await eventually(warned, what="Accepted=True with warnings")
    assert accepted["status"] == "True"
    assert 'spec.config.policies[1]: line 2: unknown action Action::"tools/call"' in accepted["message"]
    assert "never matches" in accepted["message"]


async def test_a_gateway_with_toolhives_tools_call_permit_is_accepted_with_a_warning(
    operator: Operator, kube: Api
) -> None:
    never = 'permit(\n  principal,\n  action == Action::"tools/call",\n  resource\n);'
    incoming = {
        "type": "anonymous",
        "authzConfig": {"type": "inline", "inline": {"policies": [READERS, never]}},
    }
    await kube.create("mcpgroups", group("team"))
    await kube.create("virtualmcpservers", vmcp("gw", "team", incomingAuth=incoming))
    accepted = await kube.wait_condition("virtualmcpservers", "gw", "Accepted", reason="AcceptedWithWarnings")
    assert accepted["status"] == "True"
    assert (
        'spec.incomingAuth.authzConfig.inline.policies[1]: line 3: unknown action Action::"tools/call"'
        in accepted["message"]
    )
    rendered = await eventually(lambda: config_of(kube, "gw"), what="the gateway's config")
    assert rendered["incomingAuth"]["authz"]["policies"] == [READERS, never]  # rendered as written

    async def warned() -> list[str]:
        listed = await kube.core.list_namespaced_event(kube.ns, field_selector="involvedObject.name=gw")
        return [e.message for e in listed.items if e.type == "Warning" and e.reason == "AcceptedWithWarnings"]

    messages = await eventually(warned, what="a Warning Event naming the never-matching permit")
    assert any("never matches" in m for m in messages), messages
