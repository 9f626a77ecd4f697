"""MCPGroup on the real kube-apiserver: members listed and counted, members' ResolvedRefs follow the group."""

from __future__ import annotations

from typing import Any

from tests.support.kube import Api, condition
from tests.support.operator import Operator
from tests.support.waiting import eventually


def group(name: str) -> dict[str, Any]:
    return {"kind": "MCPGroup", "metadata": {"name": name}, "spec": {"description": "team tools"}}


def server(name: str, group_name: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"image": "ghcr.io/example/mcp:1", "transport": "streamable-http"}
    if group_name:
        spec["groupRef"] = {"name": group_name}
    return {"kind": "MCPServer", "metadata": {"name": name}, "spec": spec}


def remote(name: str, group_name: str) -> dict[str, Any]:
    return {
        "kind": "MCPRemoteProxy",
        "metadata": {"name": name},
        "spec": {"remoteUrl": "https://mcp.example.com/mcp", "groupRef": {"name": group_name}},
    }


async def group_status(kube: Api, name: str, **expected: Any) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        status = (await kube.get("mcpgroups", name)).get("status") or {}
        return status if all(status.get(k) == v for k, v in expected.items()) else None

    result: dict[str, Any] = await eventually(check, what=f"MCPGroup {name} status {expected}")
    return result


async def test_members_listed_counted_and_moved(operator: Operator, kube: Api) -> None:
    await kube.create("mcpgroups", group("tools"))
    await kube.create("mcpgroups", group("other"))
    empty = await group_status(kube, "tools", phase="Ready", serverCount=0)
    assert empty["servers"] == [] and empty["remoteProxyCount"] == 0
    assert condition({"status": empty}, "Ready")["status"] == "True"  # type: ignore[index]

    await kube.create("mcpservers", server("b-srv", "tools"))
    await kube.create("mcpservers", server("a-srv", "tools"))
    await kube.create("mcpservers", server("loner", None))
    await kube.create("mcpremoteproxies", remote("saas", "tools"))
    status = await group_status(kube, "tools", serverCount=2, remoteProxyCount=1)
    assert status["servers"] == ["a-srv", "b-srv"]  # sorted; the server without groupRef is not listed
    assert status["remoteProxies"] == ["saas"]
    assert status["observedGeneration"] == 1

    # Re-pointing a member moves it: both the old and the new group are updated.
    await kube.patch("mcpservers", "b-srv", {"spec": {"groupRef": {"name": "other"}}})
    await group_status(kube, "tools", servers=["a-srv"], serverCount=1)
    await group_status(kube, "other", servers=["b-srv"], serverCount=1)

    # Deleting a member removes it.
    await kube.delete("mcpremoteproxies", "saas")
    await group_status(kube, "tools", remoteProxies=[], remoteProxyCount=0)


async def test_member_reports_missing_group_until_it_exists(operator: Operator, kube: Api) -> None:
    await kube.create("mcpservers", server("orphan", "later"))

    async def refs(expected: str) -> dict[str, Any] | None:
        cond = condition(await kube.get("mcpservers", "orphan"), "ResolvedRefs")
        return cond if cond and cond["status"] == expected else None

    missing = await eventually(lambda: refs("False"), what="ResolvedRefs=False for a missing group")
    assert missing["reason"] == "GroupNotFound" and "'later'" in missing["message"]

    await kube.create("mcpgroups", group("later"))
    await eventually(lambda: refs("True"), what="ResolvedRefs=True once the group exists")
    await group_status(kube, "later", servers=["orphan"], serverCount=1)
