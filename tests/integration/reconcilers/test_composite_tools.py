"""Composite tools on the real kube-apiserver: a VirtualMCPCompositeToolDefinition is validated into its
status (ToolHive's fields and the WorkflowValidated condition), a VirtualMCPServer referencing it renders it
with its inline tools into the gateway's config (a reload, never a rollout), and an invalid one blocks the
VirtualMCPServer with ResolvedRefs=False naming it while the gateway keeps its last config."""

from __future__ import annotations

from typing import Any

from tests.integration.reconcilers.test_mcpserver_lifecycle import events_for
from tests.integration.reconcilers.test_virtualmcpserver import (
    PLURAL,
    backends_equal_members,
    config_of,
    group,
    pod_template,
    server,
    vmcp,
)
from tests.support.cluster import Cluster
from tests.support.e2e import eventually as eventually_sync
from tests.support.kube import Api, condition
from tests.support.operator import Operator
from tests.support.waiting import eventually

DEFINITIONS = "virtualmcpcompositetooldefinitions"


def definition(name: str, **spec: Any) -> dict[str, Any]:
    body = {
        "name": name.replace("-", "_"),
        "description": "Fetch two things and join them.",
        "parameters": {"type": "object", "properties": {"url": {"type": "string"}}},
        "steps": [
            {"id": "a", "tool": "alpha.fetch", "arguments": {"url": "{{.params.url}}"}, "timeout": "10s"},
            {"id": "b", "tool": "alpha.fetch", "arguments": {"url": "https://example.com"}},
            {
                "id": "join",
                "tool": "alpha.echo",
                "dependsOn": ["a", "b"],
                "arguments": {"text": "{{.steps.a.output.text}} {{.steps.b.output.text}}"},
                "onError": {"action": "retry", "maxRetries": 2, "retryDelay": "1s"},
            },
        ],
        "output": {
            "properties": {"joined": {"type": "string", "value": "{{.steps.join.output.text}}", "default": 0}}
        },
        **spec,
    }
    return {"kind": "VirtualMCPCompositeToolDefinition", "metadata": {"name": name}, "spec": body}


async def _status(kube: Api, name: str, **expected: Any) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        obj = await kube.get(DEFINITIONS, name)
        status = obj.get("status") or {}
        return obj if all(status.get(k) == v for k, v in expected.items()) else None

    result: dict[str, Any] = await eventually(check, what=f"definition {name} status {expected}")
    return result


async def test_definition_validated_rendered_reloaded_and_an_invalid_one_blocks(
    operator: Operator, kube: Api
) -> None:
    await kube.create(DEFINITIONS, definition("fetch-join"))
    obj = await _status(kube, "fetch-join", validationStatus="Valid")
    validated = condition(obj, "WorkflowValidated")
    assert validated is not None and (validated["status"], validated["reason"]) == (
        "True",
        "ValidationSuccess",
    )
    assert (condition(obj, "Accepted") or {}).get("status") == "True"

    inline = {
        "name": "echo_once",
        "description": "Echo.",
        "steps": [{"id": "only", "tool": "alpha.echo", "arguments": {"text": "hi"}}],
    }
    await kube.create("mcpgroups", group("team"))
    await kube.create("mcpservers", server("alpha", "team"))
    config = {"compositeTools": [inline], "compositeToolRefs": [{"name": "fetch-join"}]}
    await kube.create(PLURAL, vmcp("gw", "team", config=config))
    rendered = await backends_equal_members(kube, "gw", [("mcpservers", "alpha")])
    assert [t["name"] for t in rendered["compositeTools"]] == ["echo_once", "fetch_join"]
    fetch_join = rendered["compositeTools"][1]
    assert fetch_join["steps"][2]["dependsOn"] == ["a", "b"]
    assert fetch_join["output"]["properties"]["joined"]["default"] == 0  # any JSON value is kept
    await _status(kube, "fetch-join", referencingVirtualServers=["gw"])
    deployment = await kube.wait_child("Deployment", "gw")
    template = pod_template(deployment)

    # An edit of the definition reaches the gateway's config file, which the gateway reloads.
    await kube.patch(DEFINITIONS, "fetch-join", {"spec": {"description": "Joined."}})

    async def description() -> bool:
        loaded = await config_of(kube, "gw") or {}
        return any(t.get("description") == "Joined." for t in loaded.get("compositeTools", []))

    await eventually(description, what="the new description in the gateway's config")

    # A cycle: the definition says so, the VirtualMCPServer names it, the gateway's config is kept.
    steps = definition("x")["spec"]["steps"]
    steps[0]["dependsOn"] = ["join"]
    await kube.patch(DEFINITIONS, "fetch-join", {"spec": {"steps": steps}})
    obj = await _status(kube, "fetch-join", validationStatus="Invalid")
    validated = condition(obj, "WorkflowValidated")
    assert validated is not None and (validated["status"], validated["reason"]) == (
        "False",
        "DependencyCycle",
    )
    assert "step dependency cycle: 'a' -> 'join' -> 'a'" in validated["message"]
    assert any("spec.steps[0].dependsOn" in e for e in obj["status"]["validationErrors"])

    invalid = (
        "VirtualMCPCompositeToolDefinitionInvalid"  # (after GroupNotFound while the group is not cached)
    )
    refs = await kube.wait_condition(PLURAL, "gw", "ResolvedRefs", status="False", reason=invalid)
    assert "VirtualMCPCompositeToolDefinition 'fetch-join' is invalid" in refs["message"]
    assert "dependency cycle" in refs["message"]
    kept = await config_of(kube, "gw") or {}
    assert [t["description"] for t in kept["compositeTools"]] == ["Echo.", "Joined."]
    after = await kube.wait_child("Deployment", "gw")
    assert pod_template(after) == template, "composite tools never roll the gateway"


async def test_invalid_inline_tool_refuses_the_server_naming_the_step(operator: Operator, kube: Api) -> None:
    await kube.create("mcpgroups", group("team"))
    bad = {
        "name": "bad",
        "description": "d",
        "steps": [
            {"id": "s", "tool": "alpha.echo", "arguments": {"x": "{{.steps.t.output}}"}},
            {"id": "t", "tool": "a.b"},
        ],
    }
    await kube.create(PLURAL, vmcp("gw", "team", config={"compositeTools": [bad]}))

    async def refused() -> dict[str, Any] | None:
        accepted = condition(await kube.get(PLURAL, "gw"), "Accepted")
        return accepted if accepted is not None and accepted["status"] == "False" else None

    accepted = await eventually(refused, what="Accepted=False")
    assert (
        "spec.config.compositeTools[0].steps[0].arguments.x: step 's': .steps.t.output reads step 't', "
        "which is not among its dependencies" in accepted["message"]
    )
    assert await config_of(kube, "gw") is None


def test_kubectl_explain_knows_the_kind_and_the_fields(mcp_crds: Cluster) -> None:
    def explain(field: str) -> str | None:
        # The API server publishes a new CRD's OpenAPI a moment after it is Established.
        done = mcp_crds.kubectl("explain", field, check=False)
        return " ".join(done.stdout.split()) if done.returncode == 0 else None

    steps = eventually_sync(lambda: explain(f"{DEFINITIONS}.spec.steps.dependsOn"), 60, "kubectl explain")
    assert "Steps that must finish first" in steps
    refs = eventually_sync(lambda: explain("virtualmcpservers.spec.config.compositeToolRefs"), 60, "explain")
    assert "VirtualMCPCompositeToolDefinitions of this namespace" in refs


async def test_hyphenated_step_ids_port_and_an_unknown_template_root_is_a_warning(
    operator: Operator, kube: Api
) -> None:
    steps = [
        {"id": "step-1", "tool": "alpha.fetch", "arguments": {"url": "{{.params.url}}"}},
        {
            "id": "step-2",
            "tool": "alpha.echo",
            "dependsOn": ["step-1"],
            "arguments": {"text": '{{index .steps "step-1" "output" "text"}} at {{.timestamp}}'},
        },
    ]
    await kube.create(DEFINITIONS, definition("hyphens", steps=steps, output=None))
    obj = await _status(kube, "hyphens", validationStatus="Valid")
    accepted = condition(obj, "Accepted") or {}
    assert (accepted.get("status"), accepted.get("reason")) == ("True", "AcceptedWithWarnings")
    assert ".timestamp is not a template root, so it renders as <no value>" in accepted["message"]
    assert "spec.steps[1].arguments.text" in accepted["message"]

    async def warned() -> bool:
        return any(
            (kind, reason) == ("Warning", "AcceptedWithWarnings")
            for kind, reason, _ in await events_for(kube, "hyphens")
        )

    await eventually(warned, what="a Warning Event naming the template root")
