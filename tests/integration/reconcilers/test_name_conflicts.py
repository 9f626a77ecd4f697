"""Two workloads of different kinds with one name in one namespace, on the real kube-apiserver.

An MCPServer, an MCPRemoteProxy and a VirtualMCPServer all name their Deployment and Service after
themselves. The second one to arrive must not take the first one's children over, nor fail on every
retry: it reports ResolvedRefs=False (reason NameConflict, naming the owner and the fix), writes no
child, and takes the name once the first one and its children are gone (kube-controller-manager's
garbage collector runs here).
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support.kube import Api, condition
from tests.support.mcpserver import server
from tests.support.operator import Operator
from tests.support.waiting import eventually


def controllers(obj: dict[str, Any]) -> list[tuple[str, str]]:
    refs = obj["metadata"].get("ownerReferences") or []
    return [(r["kind"], r["name"]) for r in refs if r.get("controller")]


async def test_second_owner_waits_with_a_clear_condition_then_takes_the_name(
    operator: Operator, kube: Api, controller_manager: None
) -> None:
    await kube.create("mcpservers", server("dup"))
    deployment = await kube.wait_child("Deployment", "dup")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    await kube.create(
        "mcpremoteproxies",
        {
            "kind": "MCPRemoteProxy",
            "metadata": {"name": "dup"},
            "spec": {"remoteUrl": "https://mcp.example.com/mcp"},
        },
    )

    async def conflicted() -> dict[str, Any] | None:
        cond = condition(await kube.get("mcpremoteproxies", "dup"), "ResolvedRefs") or {}
        return cond if cond.get("reason") == "NameConflict" else None

    cond = await eventually(conflicted, what="ResolvedRefs=False (NameConflict) on the MCPRemoteProxy")
    assert cond["status"] == "False"
    assert "Deployment 'dup' already belongs to MCPServer 'dup'" in cond["message"], cond
    assert "rename MCPRemoteProxy 'dup'" in cond["message"], cond
    reconciles = operator.reconciles("mcpremoteproxy")
    for kind in ("Deployment", "Service"):
        child = await kube.wait_child(kind, "dup")
        assert controllers(child) == [("MCPServer", "dup")], f"{kind} was taken over"
    current = await kube.wait_child("Deployment", "dup")
    assert current["spec"]["template"]["spec"]["containers"][0]["args"] == args
    assert controllers(await kube.wait_child("ConfigMap", "dup-proxy")) == [("MCPServer", "dup")]
    await asyncio.sleep(5)  # a window to see a hot loop in (load can only make it quieter)
    assert operator.reconciles("mcpremoteproxy") - reconciles <= 3, "the conflict must not be a hot loop"

    # The MCPServer goes; its children are collected; the MCPRemoteProxy takes the name.
    await kube.delete("mcpservers", "dup")

    async def taken() -> bool:
        child = await kube.child("Deployment", "dup")
        return child is not None and controllers(child) == [("MCPRemoteProxy", "dup")]

    await eventually(taken, within=120, what="the MCPRemoteProxy's own Deployment after the MCPServer left")

    async def resolved() -> bool:
        cond = condition(await kube.get("mcpremoteproxies", "dup"), "ResolvedRefs") or {}
        return cond.get("status") == "True"

    await eventually(resolved, what="ResolvedRefs=True once the name is free")
