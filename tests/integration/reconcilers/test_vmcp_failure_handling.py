"""``config.operational.failureHandling`` on the real kube-apiserver: accepted and rendered into the
gateway's config; a zero threshold refused with Accepted=False naming the field; the gateway's circuit
fields stored in ``status.discoveredBackends``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubernetes_asyncio import client

from gateway.vmcp.status_writer import StatusWriter
from tests.integration.reconcilers.test_virtualmcpserver import (
    PLURAL,
    backends_equal_members,
    config_of,
    group,
    server,
    vmcp,
    vmcp_status,
)
from tests.support.cluster import Cluster
from tests.support.gateway_target import operator_apply, target_for
from tests.support.kube import GROUP, VERSION, Api, condition
from tests.support.operator import Operator

FAILURE = {
    "healthCheckInterval": "15s",
    "healthCheckTimeout": "3s",
    "unhealthyThreshold": 2,
    "partialFailureMode": "best_effort",
    "circuitBreaker": {"enabled": True, "failureThreshold": 4, "timeout": "2m"},
}


async def test_failure_handling_reaches_the_gateway_config_and_a_zero_threshold_is_refused(
    operator: Operator, kube: Api
) -> None:
    await kube.create("mcpgroups", group("team"))
    await kube.create("mcpservers", server("alpha", "team"))
    await kube.create(PLURAL, vmcp("gw", "team", config={"operational": {"failureHandling": FAILURE}}))
    config = await backends_equal_members(kube, "gw", [("mcpservers", "alpha")])
    assert config["operational"]["failureHandling"] == {
        "healthCheckInterval": "15s",
        "healthCheckTimeout": "3s",
        "unhealthyThreshold": 2,
        "partialFailureMode": "best_effort",
        "circuitBreaker": {"enabled": True, "failureThreshold": 4, "timeout": "120s"},
    }
    accepted = condition(await kube.get(PLURAL, "gw"), "Accepted")
    assert accepted is not None and accepted["status"] == "True"

    zero = {**FAILURE, "circuitBreaker": {"enabled": True, "failureThreshold": 0}}
    await kube.create(PLURAL, vmcp("zero", "team", config={"operational": {"failureHandling": zero}}))
    obj = await vmcp_status(kube, "zero", phase="Failed")
    accepted = condition(obj, "Accepted")
    assert accepted is not None and accepted["status"] == "False"
    assert "spec.config.operational.failureHandling.circuitBreaker.failureThreshold" in accepted["message"]
    assert "at least 1" in accepted["message"]
    assert await config_of(kube, "zero") is None


async def test_the_gateway_writes_circuit_state_with_toolhives_field_names(
    mcp_crds: Cluster, api_client: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    custom = client.CustomObjectsApi(api_client)
    spec = {"groupRef": {"name": "g"}, "incomingAuth": {"type": "anonymous"}}
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "VirtualMCPServer", "metadata": {"name": "team"}}
    await custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, {**body, "spec": spec})
    members = [{"name": "git", "kind": "MCPServer", "url": "http://git.ns.svc:8080/mcp"}]
    await operator_apply(api_client, namespace, {"phase": "Ready", "discoveredBackends": members})
    entry: dict[str, Any] = {
        "name": "git",
        "health": "unavailable",
        "lastError": "connection refused",
        "consecutiveFailures": 5,
        "circuitBreakerState": "open",
        "circuitLastChanged": "2026-11-25T10:00:00Z",
    }
    writer = StatusWriter(target_for(mcp_crds, namespace, tmp_path), lambda: [entry])
    try:
        assert await writer.sync() is True
        obj = await custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "team")
        (item,) = obj["status"]["discoveredBackends"]
        assert item["circuitBreakerState"] == "open" and item["consecutiveFailures"] == 5
        assert item["circuitLastChanged"] == "2026-11-25T10:00:00Z" and item["status"] == "unavailable"

        entry["consecutiveFailures"] = 6  # a count alone is no write
        assert await writer.sync() is False
        entry.update(health="degraded", circuitBreakerState="half-open")
        assert await writer.sync() is True
        entry.update(health="ready", circuitBreakerState="closed", consecutiveFailures=0)
        del entry["lastError"]
        assert await writer.sync() is True
        obj = await custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "team")
        (item,) = obj["status"]["discoveredBackends"]
        assert (item["status"], item["circuitBreakerState"]) == ("ready", "closed")
        assert "consecutiveFailures" not in item and "message" not in item
        assert item["url"] == members[0]["url"]  # the operator's field is untouched
    finally:
        await writer.transport.close()
