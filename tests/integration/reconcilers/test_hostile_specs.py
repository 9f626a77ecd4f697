"""Hostile but schema-valid objects on the real API server: each gets its children or a clear
``Accepted=False``, and no reconcile fails (a failing reconcile would be retried in a loop).

Long and dotted names (derived child names are shortened with a stable hash), unicode and huge env and
arg lists, thousands of problems in one spec (the condition message stays within its 32768 characters,
so the status write itself succeeds) and a quantity whose exponent overflows.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from controller.reconcilers.mcpremoteproxy_build import Names as ProxyNames
from controller.reconcilers.mcpserver_build import Names as ServerNames
from controller.reconcilers.virtualmcpserver_build import Names as GatewayNames
from tests.support.kube import Api, condition
from tests.support.operator import Operator
from tests.support.waiting import eventually

LONG = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])  # 253 characters: the longest object name
REMOTE = ".".join(["r" * 63, "b" * 63, "c" * 63, "d" * 61])
UNICODE = "héllo wörld ✓ 日本語 🚀 \u202e"


def reconcile_errors(operator: Operator) -> float:
    total = 0.0
    for metric in operator.manager.metrics.registry.collect():
        if metric.name == "controller_runtime_reconcile_errors":
            total += sum(s.value for s in metric.samples if s.name.endswith("_total"))
    return total


async def accepted(kube: Api, plural: str, name: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        obj = await kube.get(plural, name)
        return condition(obj, "Accepted")

    return await eventually(check, within=60, what=f"Accepted on {plural}/{name}")  # type: ignore[no-any-return]


async def test_hostile_specs_get_children_or_a_clear_refusal_never_a_failing_reconcile(
    operator: Operator, kube: Api
) -> None:
    env = [{"name": f"VAR_{i}", "value": UNICODE * 3} for i in range(500)]
    servers: dict[str, dict[str, Any]] = {
        LONG: {"transport": "streamable-http"},
        "team.fetch": {"transport": "stdio", "args": [UNICODE, "--x=" + "y" * 5000] * 100},
        "huge-env": {"env": env},
        "many-problems": {"secrets": [{"name": "s", "key": f"bad-key-{i}"} for i in range(3000)]},
        "overflow": {"resources": {"limits": {"cpu": "1e999999999"}}},
    }
    for name, spec in servers.items():
        await kube.create(
            "mcpservers",
            {"kind": "MCPServer", "metadata": {"name": name}, "spec": {"image": "x/y:1", **spec}},
        )
    await kube.create(
        "mcpremoteproxies",
        {
            "kind": "MCPRemoteProxy",
            "metadata": {"name": REMOTE},
            "spec": {"remoteUrl": "https://mcp.example.com/mcp"},
        },
    )
    await kube.create("mcpgroups", {"kind": "MCPGroup", "metadata": {"name": "team"}, "spec": {}})
    await kube.create(
        "virtualmcpservers",
        {
            "kind": "VirtualMCPServer",
            "metadata": {"name": "g" * 100},
            "spec": {"groupRef": {"name": "team"}, "incomingAuth": {"type": "anonymous"}},
        },
    )

    for name in (LONG, "team.fetch", "huge-env"):
        cond = await accepted(kube, "mcpservers", name)
        assert cond["status"] == "True", (name, cond)
        names = ServerNames(name)
        sts = await eventually(partial(kube.child, "StatefulSet", names.server), what=f"{name} StatefulSet")
        assert len(names.server) <= 52
        await kube.wait_child("Service", names.proxy)  # children are applied concurrently
        obj = await kube.get("mcpservers", name)
        assert obj["status"]["url"].startswith(f"http://{names.proxy}.{kube.ns}.svc.")
        if name == "huge-env":
            container = sts["spec"]["template"]["spec"]["containers"][0]
            assert [e["value"] for e in container["env"] if e["name"] == "VAR_499"] == [UNICODE * 3]
    role = await eventually(lambda: kube.child("Role", ServerNames("team.fetch").config), what="stdio Role")
    assert ServerNames("team.fetch").server_pod in str(role["rules"])

    many = await accepted(kube, "mcpservers", "many-problems")
    assert many["status"] == "False" and many["reason"] == "InvalidSpec"
    assert "spec.secrets[0].targetEnvName" in many["message"] and "more problems" in many["message"]
    assert len(many["message"]) <= 32768
    overflow = await accepted(kube, "mcpservers", "overflow")
    assert overflow["status"] == "False" and "spec.resources.limits.cpu" in overflow["message"]

    assert (await accepted(kube, "mcpremoteproxies", REMOTE))["status"] == "True"
    await eventually(
        lambda: kube.child("Deployment", ProxyNames(REMOTE).proxy), what="remote proxy Deployment"
    )
    assert (await accepted(kube, "virtualmcpservers", "g" * 100))["status"] == "True"
    await eventually(lambda: kube.child("Service", GatewayNames("g" * 100).gateway), what="gateway Service")

    assert reconcile_errors(operator) == 0, (
        "a reconcile failed on a hostile spec (it would be retried forever)"
    )
