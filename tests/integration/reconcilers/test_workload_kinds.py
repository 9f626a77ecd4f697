"""The three workload kinds behave the same way where they share a rule (one reconcile, one resolver, one
builder of the front Deployment): an invalid MCPToolConfig is refused by each with the same condition, and
no kind's podTemplateSpec can pin the config-hash annotation."""

from __future__ import annotations

from typing import Any

from api.podtemplate import CONFIG_HASH_ANNOTATION
from tests.support.kube import Api, condition
from tests.support.operator import Operator
from tests.support.waiting import eventually

INVALID_PREFIX = "MCPToolConfig 'clash' is invalid (see its Accepted condition): spec.toolsOverride[a].name"


def workloads(**spec: Any) -> dict[str, dict[str, Any]]:
    """plural -> one object of each workload kind named ``w-<kind>``, with ``spec`` added."""
    return {
        "mcpservers": {
            "kind": "MCPServer",
            "metadata": {"name": "w-server"},
            "spec": {"image": "ghcr.io/example/mcp:1", "transport": "streamable-http", **spec},
        },
        "mcpremoteproxies": {
            "kind": "MCPRemoteProxy",
            "metadata": {"name": "w-remote"},
            "spec": {"remoteUrl": "https://mcp.example.com/mcp", **spec},
        },
        "virtualmcpservers": {
            "kind": "VirtualMCPServer",
            "metadata": {"name": "w-gateway"},
            "spec": {"groupRef": {"name": "team"}, "incomingAuth": {"type": "anonymous"}, **spec},
        },
    }


async def test_an_invalid_tool_config_gives_every_kind_the_same_condition(
    operator: Operator, kube: Api
) -> None:
    await kube.create("mcpgroups", {"kind": "MCPGroup", "metadata": {"name": "team"}, "spec": {}})
    await kube.create(
        "mcptoolconfigs",
        {
            "kind": "MCPToolConfig",
            "metadata": {"name": "clash"},
            "spec": {"toolsOverride": {"a": {"name": "same"}, "b": {"name": "same"}}},
        },
    )
    objects = workloads(toolConfigRef={"name": "clash"})
    objects["virtualmcpservers"]["spec"]["config"] = {
        "aggregation": {"tools": [{"workload": "w-server", "toolConfigRef": {"name": "clash"}}]}
    }
    for plural, body in objects.items():
        await kube.create(plural, body)

    async def refs_condition(plural: str, name: str, status: str, reason: str = "") -> dict[str, Any] | None:
        cond = condition(await kube.get(plural, name), "ResolvedRefs") or {}
        return cond if cond.get("status") == status and cond.get("reason", "").startswith(reason) else None

    refused = {}
    for plural, body in objects.items():
        name = body["metadata"]["name"]
        # The tool config may reach the operator's cache after the workload (then ToolConfigNotFound
        # first): its watch re-enqueues the workload, which then reports the config invalid.
        refused[plural] = await eventually(
            lambda p=plural, n=name: refs_condition(p, n, "False", "ToolConfigInvalid"),
            what=f"{name} ResolvedRefs=False ToolConfigInvalid",
        )
    shapes = {
        (c["type"], c["status"], c["reason"], c["message"][: len(INVALID_PREFIX)]) for c in refused.values()
    }
    assert shapes == {("ResolvedRefs", "False", "ToolConfigInvalid", INVALID_PREFIX)}, refused
    # The proxies are not rendered with a filter that fails its own rules (the gateway hides the tools).
    assert await kube.child("Deployment", "w-server") is None
    assert await kube.child("Deployment", "w-remote") is None

    await kube.patch("mcptoolconfigs", "clash", {"spec": {"toolsOverride": {"b": {"name": "other"}}}})
    for plural, body in objects.items():
        name = body["metadata"]["name"]
        await eventually(
            lambda p=plural, n=name: refs_condition(p, n, "True"), what=f"{name} ResolvedRefs=True"
        )


async def test_no_kind_pod_template_can_pin_the_config_hash(operator: Operator, kube: Api) -> None:
    await kube.create("mcpgroups", {"kind": "MCPGroup", "metadata": {"name": "team"}, "spec": {}})
    pinning = {"metadata": {"annotations": {CONFIG_HASH_ANNOTATION: "pinned", "team": "a"}}}
    objects = workloads(podTemplateSpec=pinning)
    for plural, body in objects.items():
        await kube.create(plural, body)
    for body in objects.values():
        name = body["metadata"]["name"]
        deployment = await kube.wait_child("Deployment", name)
        annotations = deployment["spec"]["template"]["metadata"].get("annotations") or {}
        assert annotations.get(CONFIG_HASH_ANNOTATION) not in (None, "pinned"), (name, annotations)
