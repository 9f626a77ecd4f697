"""Deleting a namespace full of MCP resources under a running operator logs no error and no traceback:
the 404s, 409s and "namespace is being terminated" refusals the teardown answers are one debug line
each."""

from __future__ import annotations

from kubernetes_asyncio import client
from structlog.testing import capture_logs

from tests.support.kube import Api
from tests.support.mcpserver import PLURAL, make_ready, server
from tests.support.metrics import idle
from tests.support.operator import Operator
from tests.support.waiting import until


async def test_deleting_the_namespace_logs_no_error_and_no_traceback(
    operator: Operator, kube: Api, controller_manager: None
) -> None:
    await kube.create("mcpgroups", {"kind": "MCPGroup", "metadata": {"name": "team"}, "spec": {}})
    for name in ("one", "two", "three"):
        await kube.create(PLURAL, server(name, groupRef={"name": "team"}))
        await make_ready(kube, name)
    await kube.create(
        "mcpremoteproxies",
        {
            "kind": "MCPRemoteProxy",
            "metadata": {"name": "remote"},
            "spec": {"remoteUrl": "https://a.example/mcp"},
        },
    )
    await kube.create(
        "virtualmcpservers",
        {
            "kind": "VirtualMCPServer",
            "metadata": {"name": "gateway"},
            "spec": {"groupRef": {"name": "team"}, "incomingAuth": {"type": "anonymous"}},
        },
    )
    await kube.wait_child("Deployment", "gateway")
    await kube.wait_child("Deployment", "remote")
    await until(lambda: idle(operator.manager), 60, "the operator to settle")

    with capture_logs() as logs:
        await kube.core.delete_namespace(kube.ns)

        async def gone() -> bool:
            try:
                await kube.core.read_namespace(kube.ns)
            except client.ApiException as exc:
                return exc.status == 404
            return False

        await until(gone, 120, f"namespace {kube.ns} to be deleted")
        await until(lambda: idle(operator.manager), 60, "the operator to settle after the teardown")

    loud = [e for e in logs if e["log_level"] in ("warning", "error", "critical") or "exc_info" in e]
    assert loud == [], "\n".join(repr(e) for e in loud)
