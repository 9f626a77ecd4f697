"""``SessionStorageReachable`` on the real API server with a real ``redis-server``: the operator probes a
workload's Redis, reports it False (naming the address, never the password) while Redis is down, True
again once it is back, with the ``mcp_operator_session_storage_reachable`` gauge, and writes nothing
while the answer stays the same."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.support.cluster import Cluster
from tests.support.kube import Api, condition
from tests.support.operator import SETTINGS, Operator, run_operator
from tests.support.redis_server import RedisServer, running_redis
from tests.support.waiting import eventually

PASSWORD = "s3cret-redis-pw"
RECHECK = 3.0
"""The operator's recheck period here (a sixth of it while Redis is down)."""


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    with running_redis(tmp_path, password=PASSWORD) as server:
        yield server


@pytest.fixture
async def operator(mcp_crds: Cluster, namespace: str) -> AsyncIterator[Operator]:
    settings = replace(SETTINGS, redis_recheck_seconds=RECHECK)
    async with run_operator(mcp_crds.kubeconfig, namespace, settings=settings) as op:
        yield op


def gauge(operator: Operator) -> float | None:
    labels = {"kind": "MCPServer", "namespace": operator.namespace, "name": "fetch"}
    registry = operator.manager.metrics.registry
    return registry.get_sample_value("mcp_operator_session_storage_reachable", labels)


async def reachable(kube: Api, status: str) -> dict[str, str]:
    async def check() -> dict[str, str] | None:
        cond = condition(await kube.get("mcpservers", "fetch"), "SessionStorageReachable") or {}
        return cond if cond.get("status") == status else None

    found: dict[str, str] = await eventually(
        check, within=3 * RECHECK + 10, what=f"SessionStorageReachable={status}"
    )
    return found


async def test_condition_follows_redis_down_and_back_without_writes_in_between(
    operator: Operator, kube: Api, redis: RedisServer
) -> None:
    await kube.create_secret("redis", {"password": PASSWORD})
    storage = {
        "provider": "redis",
        "address": redis.address,
        "passwordRef": {"name": "redis", "key": "password"},
    }
    spec = {"image": "ghcr.io/example/fetch:1", "transport": "streamable-http", "sessionStorage": storage}
    await kube.create("mcpservers", {"kind": "MCPServer", "metadata": {"name": "fetch"}, "spec": spec})
    up = await reachable(kube, "True")
    assert up["reason"] == "RedisAnswers" and redis.address in up["message"]
    assert gauge(operator) == 1

    # Steady state: the operator keeps probing (reconciles go on) but writes nothing.
    version = (await kube.get("mcpservers", "fetch"))["metadata"]["resourceVersion"]
    writes, reconciles = operator.writes(), operator.reconciles()

    async def rechecked() -> bool:
        return operator.reconciles() >= reconciles + 2

    await eventually(rechecked, within=4 * RECHECK, what="two rechecks")
    assert operator.writes() == writes
    assert (await kube.get("mcpservers", "fetch"))["metadata"]["resourceVersion"] == version

    redis.kill()
    down = await reachable(kube, "False")
    assert down["reason"] == "RedisUnreachable"
    assert f"Redis at {redis.address} does not answer" in down["message"]
    assert PASSWORD not in str(await kube.get("mcpservers", "fetch"))
    assert gauge(operator) == 0
    ready = condition(await kube.get("mcpservers", "fetch"), "Accepted") or {}
    assert ready.get("status") == "True"  # the pods keep serving: nothing else about the workload changes

    await asyncio.to_thread(redis.start)  # the same port, empty
    assert (await reachable(kube, "True"))["reason"] == "RedisAnswers"
    assert gauge(operator) == 1

    await kube.patch(
        "mcpservers", "fetch", {"spec": {"sessionStorage": {"provider": "memory", "address": None}}}
    )

    async def dropped() -> bool:
        cond = condition(await kube.get("mcpservers", "fetch"), "SessionStorageReachable")
        return cond is None and gauge(operator) is None

    await eventually(dropped, what="the condition and the gauge gone with Redis")
