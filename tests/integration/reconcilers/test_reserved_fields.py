"""ToolHive's security-relevant fields that the operator does not implement fail closed on the real API
server: applied as ToolHive writes them, with kubectl's client-side validation off (what kubectl itself
suggests when validation fails), they are stored as written, and the object is refused with
``Accepted=False`` and a Warning Event naming each field; nothing is deployed, so no workload serves
without the authentication or authorization its manifest asked for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.support.cluster import Cluster
from tests.support.kube import GROUP, Api, condition
from tests.support.operator import Operator
from tests.support.waiting import eventually

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "toolhive-refused" / "security-fields.yaml"

# name -> (plural, the fields its refusal must name)
REFUSED = {
    "exchange-upstream": ("mcpexternalauthconfigs", ["spec.tokenExchange.subjectProviderName"]),
    "fetch-with-webhooks": ("mcpservers", ["spec.webhookConfigRef"]),
}
WORKLOADS = ("mcpservers", "mcpremoteproxies", "virtualmcpservers")


def ported_manifest() -> tuple[str, list[dict[str, Any]]]:
    """The fixture with ToolHive's API group replaced by ours, version kept (the only edit a user makes)."""
    text = FIXTURE.read_text().replace("toolhive.stacklok.dev/", f"{GROUP}/")
    docs = [d for d in yaml.safe_load_all(text) if d]
    assert {d["apiVersion"] for d in docs} == {f"{GROUP}/v1beta1"}
    return text, docs


def _at(obj: dict[str, Any], path: str) -> Any:
    node: Any = obj
    for key in path.split("."):
        node = node.get(key) if isinstance(node, dict) else None
    return node


async def warning_events(kube: Api, name: str) -> list[str]:
    listed = await kube.core.list_namespaced_event(kube.ns, field_selector=f"involvedObject.name={name}")
    return [e.message for e in listed.items if e.type == "Warning"]


async def test_toolhive_security_fields_are_stored_and_refused_never_deployed_open(
    operator: Operator, kube: Api, mcp_crds: Cluster
) -> None:
    text, docs = ported_manifest()
    assert {d["metadata"]["name"] for d in docs} == set(REFUSED)
    await kube.create("mcpgroups", {"kind": "MCPGroup", "metadata": {"name": "my-services"}, "spec": {}})
    mcp_crds.kubectl("apply", "--validate=false", "-n", kube.ns, "-f", "-", input=text)

    for doc in docs:
        name = doc["metadata"]["name"]
        plural, fields = REFUSED[name]
        cond = await kube.wait_condition(plural, name, "Accepted", status="False")
        for field in fields:
            assert f"{field}: is not supported yet; remove it" in cond["message"], (field, cond)
        stored = json.loads(mcp_crds.kubectl("get", plural, name, "-n", kube.ns, "-o", "json").stdout)
        for field in fields:  # stored as written: nothing was pruned
            assert _at(stored, field) == _at(doc, field), (name, field)
        events = await eventually(lambda n=name: warning_events(kube, n), what=f"a Warning Event for {name}")
        assert any(all(f in message for f in fields) for message in events), events
        if plural in WORKLOADS:
            ready = condition(await kube.get(plural, name), "Ready") or {}
            assert ready.get("status") == "False", ready
            # Refused before anything is rendered: no proxy or gateway serves without its auth.
            for kind in ("Deployment", "Service", "StatefulSet"):
                assert await kube.child(kind, name) is None, (kind, name)
                assert await kube.child(kind, f"{name}-server") is None, (kind, name)


async def test_removing_the_refused_field_accepts_the_object(operator: Operator, kube: Api) -> None:
    await kube.create(
        "mcpremoteproxies",
        {
            "kind": "MCPRemoteProxy",
            "metadata": {"name": "remote"},
            "spec": {
                "remoteUrl": "https://mcp.example.com/mcp",
                "telemetry": {"openTelemetry": {"enabled": True}},
            },
        },
    )
    cond = await kube.wait_condition("mcpremoteproxies", "remote", "Accepted", status="False")
    assert cond["message"].startswith("spec.telemetry: is not supported yet"), cond
    # null (a merge patch removing it) is what the proxy does without it: accepted.
    await kube.patch("mcpremoteproxies", "remote", {"spec": {"telemetry": None}})
    await kube.wait_condition("mcpremoteproxies", "remote", "Accepted", status="True")
    await kube.wait_child("Deployment", "remote")
