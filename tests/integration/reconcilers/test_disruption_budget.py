"""``spec.podDisruptionBudget`` on the real API server: an owned PodDisruptionBudget over the front pods,
kept, changed and removed with the field; refused on a stdio proxy and with both fields set."""

from __future__ import annotations

from typing import Any

from tests.support.kube import Api, condition
from tests.support.operator import Operator
from tests.support.waiting import eventually

HTTP_SERVER = {"image": "ghcr.io/example/fetch:1", "transport": "streamable-http", "replicas": 2}


async def budget_spec(kube: Api, name: str, **wanted: Any) -> dict[str, Any]:
    """The PodDisruptionBudget ``name``'s spec once it has ``wanted`` (and only those bounds)."""

    async def check() -> dict[str, Any] | None:
        spec = ((await kube.disruption_budget(name)) or {}).get("spec") or {}
        bounds = {k: spec[k] for k in ("minAvailable", "maxUnavailable") if k in spec}
        return spec if bounds == wanted else None

    found: dict[str, Any] = await eventually(check, what=f"PodDisruptionBudget {name} with {wanted}")
    return found


async def refused(kube: Api, plural: str, name: str, text: str) -> str:
    async def check() -> str | None:
        cond = condition(await kube.get(plural, name), "Accepted") or {}
        message = str(cond.get("message", ""))
        return message if cond.get("status") == "False" and text in message else None

    found: str = await eventually(check, what=f"Accepted=False on {name} saying {text!r}")
    return found


async def test_mcpserver_budget_follows_the_field_and_bad_budgets_are_refused(
    operator: Operator, kube: Api
) -> None:
    spec = {**HTTP_SERVER, "podDisruptionBudget": {"minAvailable": 1}}
    await kube.create("mcpservers", {"kind": "MCPServer", "metadata": {"name": "fetch"}, "spec": spec})
    budget = await budget_spec(kube, "fetch", minAvailable=1)
    deployment = await kube.wait_child("Deployment", "fetch")
    assert budget["selector"] == deployment["spec"]["selector"]  # exactly the proxy pods

    await kube.custom.delete_namespaced_custom_object(
        "policy",
        str((await kube.disruption_budget("fetch") or {})["apiVersion"]).split("/")[1],
        kube.ns,
        "poddisruptionbudgets",
        "fetch",
    )
    await budget_spec(kube, "fetch", minAvailable=1)  # an owned child: recreated

    await kube.patch(
        "mcpservers",
        "fetch",
        {"spec": {"podDisruptionBudget": {"minAvailable": None, "maxUnavailable": "50%"}}},
    )
    await budget_spec(kube, "fetch", maxUnavailable="50%")

    await kube.patch("mcpservers", "fetch", {"spec": {"podDisruptionBudget": {"minAvailable": 1}}})
    message = await refused(kube, "mcpservers", "fetch", "spec.podDisruptionBudget")
    assert "set exactly one of minAvailable and maxUnavailable" in message
    assert await budget_spec(kube, "fetch", maxUnavailable="50%")  # nothing changed while refused

    await kube.patch("mcpservers", "fetch", {"spec": {"podDisruptionBudget": None}})
    await kube.wait_condition("mcpservers", "fetch", "Accepted", status="True")
    await eventually(lambda: _absent(kube, "fetch"), what="PodDisruptionBudget fetch deleted with the field")


async def _absent(kube: Api, name: str) -> bool:
    return await kube.disruption_budget(name) is None


async def test_a_budget_on_a_stdio_proxy_is_refused_and_nothing_is_deployed(
    operator: Operator, kube: Api
) -> None:
    spec = {
        "image": "ghcr.io/example/fetch:1",
        "transport": "stdio",
        "podDisruptionBudget": {"minAvailable": 1},
    }
    await kube.create("mcpservers", {"kind": "MCPServer", "metadata": {"name": "fetch"}, "spec": spec})
    message = await refused(kube, "mcpservers", "fetch", "spec.podDisruptionBudget")
    assert "block node drains forever" in message and "remove podDisruptionBudget" in message
    assert await kube.child("Deployment", "fetch") is None
    assert await kube.disruption_budget("fetch") is None


async def test_remote_proxy_and_gateway_get_a_budget_over_their_own_pods(
    operator: Operator, kube: Api
) -> None:
    budget = {"podDisruptionBudget": {"maxUnavailable": 1}}
    remote = {"remoteUrl": "https://mcp.example.com/mcp", "replicas": 2, **budget}
    await kube.create(
        "mcpremoteproxies", {"kind": "MCPRemoteProxy", "metadata": {"name": "saas"}, "spec": remote}
    )
    await kube.create("mcpgroups", {"kind": "MCPGroup", "metadata": {"name": "team"}, "spec": {}})
    gateway = {"groupRef": {"name": "team"}, "incomingAuth": {"type": "anonymous"}, "replicas": 2, **budget}
    await kube.create(
        "virtualmcpservers", {"kind": "VirtualMCPServer", "metadata": {"name": "gw"}, "spec": gateway}
    )
    for name in ("saas", "gw"):
        spec = await budget_spec(kube, name, maxUnavailable=1)
        deployment = await kube.wait_child("Deployment", name)
        assert spec["selector"] == deployment["spec"]["selector"], name
