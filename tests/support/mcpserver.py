"""MCPServers as the reconciler tests create them, and making one Ready as the workload controllers would."""

from __future__ import annotations

from typing import Any

from tests.support.kube import Api, condition
from tests.support.waiting import eventually

PLURAL = "mcpservers"


def server(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "kind": "MCPServer",
        "metadata": {"name": name},
        "spec": {"image": "ghcr.io/example/mcp:1", **spec},
    }


async def ready(kube: Api, name: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        obj = await kube.get(PLURAL, name)
        cond = condition(obj, "Ready")
        return obj if cond and cond["status"] == "True" else None

    result: dict[str, Any] = await eventually(check, what=f"MCPServer {name} Ready")
    return result


async def make_ready(kube: Api, name: str) -> None:
    await eventually(lambda: kube.child("Deployment", name), what="proxy Deployment")
    await kube.mark_ready("Deployment", name)
    await kube.mark_ready("StatefulSet", f"{name}-server")


def expected_children(name: str) -> set[tuple[str, str]]:
    """The eight children of a stdio MCPServer (DESIGN.md section 4)."""
    return {
        ("Deployment", name),
        ("StatefulSet", f"{name}-server"),
        ("Service", name),
        ("ConfigMap", f"{name}-proxy"),
        ("ServiceAccount", f"{name}-proxy"),
        ("ServiceAccount", f"{name}-server"),
        ("Role", f"{name}-proxy"),
        ("RoleBinding", f"{name}-proxy"),
    }
