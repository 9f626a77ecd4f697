"""sessionStorage, rateLimiting, sessionAffinity and replicas on the real API server: rendered into the
proxy's and the gateway's children, and bad values refused with Accepted=False before anything rolls.
The Redis is a real ``redis-server`` with a password: the operator checks a new connection (AUTH, SELECT,
PING) before it rolls out (test_session_storage_admission.py)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.podtemplate import CONFIG_HASH_ANNOTATION
from tests.support.kube import Api, condition
from tests.support.operator import Operator
from tests.support.redis_server import running_redis
from tests.support.waiting import eventually

PASSWORD = "s3cret-redis-pw"
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


@pytest.fixture
async def redis_storage(kube: Api, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """``sessionStorage`` on a running ``redis-server`` whose password is in Secret ``redis``."""
    await kube.create_secret("redis", {"password": PASSWORD})
    with running_redis(tmp_path, password=PASSWORD) as redis:
        yield {
            "provider": "redis",
            "address": redis.address,
            "keyPrefix": "team-a:",
            "passwordRef": {"name": "redis", "key": "password"},
        }


async def test_mcpserver_scales_with_redis_and_refuses_a_bad_limit_without_rolling(
    operator: Operator, kube: Api, redis_storage: dict[str, Any]
) -> None:
    spec = {
        "image": "ghcr.io/example/fetch:1",
        "transport": "streamable-http",
        "replicas": 3,
        "sessionAffinity": "ClientIP",
        "sessionStorage": redis_storage,
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


async def test_gateway_replicas_sessions_and_limits(
    operator: Operator, kube: Api, redis_storage: dict[str, Any]
) -> None:
    await kube.create("mcpgroups", {"kind": "MCPGroup", "metadata": {"name": "team"}, "spec": {}})
    spec = {
        "groupRef": {"name": "team"},
        "incomingAuth": {"type": "anonymous"},
        "replicas": 2,
        "sessionStorage": redis_storage,
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
    assert config["sessionStorage"]["address"] == redis_storage["address"]
    assert config["rateLimiting"]["perUser"]["maxTokens"] == 60
