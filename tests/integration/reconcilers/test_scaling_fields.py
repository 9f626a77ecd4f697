"""sessionStorage, rateLimiting, sessionAffinity and replicas on the real API server: rendered into the
proxy's and the gateway's children, and bad values refused with Accepted=False before anything rolls."""

from __future__ import annotations

import json
from typing import Any

import yaml

from api.podtemplate import CONFIG_HASH_ANNOTATION
from tests.support.kube import Api, condition
from tests.support.operator import Operator
from tests.support.waiting import eventually

REDIS = {
    "provider": "redis",
    "address": "redis.cache.svc.cluster.local:6379",
    "keyPrefix": "team-a:",
    "passwordRef": {"name": "redis", "key": "password"},
}
LIMITS = {"perUser": {"maxTokens": 60, "refillPeriod": "1m0s"}}


def digest(deployment: dict[str, Any]) -> str:
    return str(deployment["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION])


def container_env(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    return list(deployment["spec"]["template"]["spec"]["containers"][0].get("env") or [])


async def refused_naming(kube: Api, field: str) -> None:
    """Until MCPServer ``fetch`` is Accepted=False with a message naming ``field``."""

    async def check() -> bool:
        cond = condition(await kube.get("mcpservers", "fetch"), "Accepted") or {}
        return cond.get("status") == "False" and field in cond.get("message", "")

    await eventually(check, what=f"Accepted=False naming {field}")


async def test_mcpserver_scales_with_redis_and_refuses_a_bad_limit_without_rolling(
    operator: Operator, kube: Api
) -> None:
    spec = {
        "image": "ghcr.io/example/fetch:1",
        "transport": "streamable-http",
        "replicas": 3,
        "sessionAffinity": "ClientIP",
        "sessionStorage": REDIS,
        "rateLimiting": LIMITS,
    }
    await kube.create("mcpservers", {"kind": "MCPServer", "metadata": {"name": "fetch"}, "spec": spec})
    await kube.wait_condition("mcpservers", "fetch", "Accepted", status="True")
    deployment = await kube.wait_child("Deployment", "fetch")
    assert deployment["spec"]["replicas"] == 3
    secret_env = [e for e in container_env(deployment) if "valueFrom" in e]
    assert [e["valueFrom"]["secretKeyRef"] for e in secret_env] == [{"name": "redis", "key": "password"}]
    config_map = await kube.wait_child("ConfigMap", "fetch-proxy")
    config = json.loads(config_map["data"]["proxy.json"])
    assert config["sessionStorage"]["passwordRef"] == {"env": secret_env[0]["name"]}
    assert config["rateLimiting"] == {"perUser": {"maxTokens": 60, "refillPeriod": "60s"}}
    service = await kube.wait_child("Service", "fetch")
    assert service["spec"]["sessionAffinity"] == "ClientIP"

    before = digest(deployment)
    await kube.patch("mcpservers", "fetch", {"spec": {"rateLimiting": {"perUser": {"maxTokens": 0}}}})
    await refused_naming(kube, "spec.rateLimiting.perUser.maxTokens")
    assert digest(await kube.wait_child("Deployment", "fetch")) == before  # nothing rolled
    await kube.patch(
        "mcpservers",
        "fetch",
        {"spec": {"rateLimiting": {"perUser": {"maxTokens": 5, "refillPeriod": "soon"}}}},
    )
    await refused_naming(kube, "spec.rateLimiting.perUser.refillPeriod")
    await kube.patch("mcpservers", "fetch", {"spec": {"sessionStorage": {"address": "redis.cache.svc"}}})
    await refused_naming(kube, "spec.sessionStorage.address")
    assert digest(await kube.wait_child("Deployment", "fetch")) == before


async def test_gateway_replicas_sessions_and_limits(operator: Operator, kube: Api) -> None:
    await kube.create("mcpgroups", {"kind": "MCPGroup", "metadata": {"name": "team"}, "spec": {}})
    spec = {
        "groupRef": {"name": "team"},
        "incomingAuth": {"type": "anonymous"},
        "replicas": 2,
        "sessionStorage": REDIS,
        "config": {"rateLimiting": LIMITS},
    }
    await kube.create(
        "virtualmcpservers", {"kind": "VirtualMCPServer", "metadata": {"name": "gw"}, "spec": spec}
    )
    await kube.wait_condition("virtualmcpservers", "gw", "Accepted", status="True")
    deployment = await kube.wait_child("Deployment", "gw")
    assert deployment["spec"]["replicas"] == 2
    assert any(
        e.get("valueFrom", {}).get("secretKeyRef", {}).get("name") == "redis"
        for e in container_env(deployment)
    )
    config = yaml.safe_load((await kube.wait_child("ConfigMap", "gw-vmcp"))["data"]["vmcp.yaml"])
    assert config["sessionStorage"]["address"] == REDIS["address"]
    assert config["rateLimiting"]["perUser"]["maxTokens"] == 60
