"""A new or changed Redis connection rolls out only once Redis took the pods' handshake, on the real API
server with a real ``redis-server``: an address nobody answers and a wrong password are ``Accepted=False``
naming the field with nothing created or rolled; Redis starting later, or the Secret fixed, rolls the
workload out without touching it; a workload that already rolled out keeps serving (and stays Accepted)
when its Redis goes away; nothing is written and nothing re-checked in a steady state."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from controller.reconcilers.redis_probe import check_redis
from tests.support.cluster import Cluster
from tests.support.kube import CONFIG_HASH, Api, condition
from tests.support.operator import SETTINGS, Operator, run_operator
from tests.support.processes import free_port
from tests.support.redis_server import RedisServer, running_redis
from tests.support.waiting import eventually

PASSWORD = "s3cret-redis-pw"
WRONG = "not-the-password-4711"
RECHECK = 3.0
"""The operator's recheck period here: a refused connection is retried after 0.5 s, 1 s, 2 s, then 3 s."""


@pytest.fixture
async def operator(mcp_crds: Cluster, namespace: str) -> AsyncIterator[Operator]:
    settings = replace(SETTINGS, redis_recheck_seconds=RECHECK)
    async with run_operator(mcp_crds.kubeconfig, namespace, settings=settings) as op:
        yield op


def checks(operator: Operator, outcome: str) -> float:
    registry = operator.manager.metrics.registry
    value = registry.get_sample_value("mcp_operator_session_storage_checks_total", {"outcome": outcome})
    return value or 0.0


async def create_fetch(kube: Api, storage: dict[str, Any]) -> None:
    spec = {"image": "ghcr.io/example/fetch:1", "transport": "streamable-http", "sessionStorage": storage}
    await kube.create("mcpservers", {"kind": "MCPServer", "metadata": {"name": "fetch"}, "spec": spec})


async def warnings(kube: Api, reason: str) -> list[str]:
    listed = await kube.core.list_namespaced_event(kube.ns, field_selector="involvedObject.name=fetch")
    return [e.message for e in listed.items if e.type == "Warning" and e.reason == reason]


def digest(deployment: dict[str, Any]) -> str:
    return str(deployment["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH])


async def test_unreachable_redis_refuses_until_it_starts_and_a_rolled_workload_outlives_it(
    operator: Operator, kube: Api, tmp_path: Path
) -> None:
    redis = RedisServer(tmp_path)  # its port is chosen, nothing listens on it yet
    await create_fetch(kube, {"provider": "redis", "address": redis.address})
    refused = await kube.wait_condition("mcpservers", "fetch", "Accepted", reason="SessionStorageUnreachable")
    assert refused["status"] == "False"
    assert refused["message"].startswith(f"spec.sessionStorage.address: Redis at {redis.address} does not")
    assert f"the operator tried {redis.address} with a 1s timeout" in refused["message"]
    assert await eventually(lambda: warnings(kube, "SessionStorageUnreachable"), what="a Warning Event")
    assert await kube.child("Deployment", "fetch") is None
    assert await kube.child("ConfigMap", "fetch-proxy") is None

    # Retried with backoff (0.5, 1, 2, 3, 3 ... s), not in a hot loop, and the same refusal writes nothing.
    writes, before = operator.writes(), checks(operator, "unreachable")
    await asyncio.sleep(3 * RECHECK)  # a window to count retries in, not a synchronisation
    retries = checks(operator, "unreachable") - before
    assert 1 <= retries <= 8
    assert operator.writes() == writes
    generation = (await kube.get("mcpservers", "fetch"))["metadata"]["generation"]

    await asyncio.to_thread(redis.start)  # Redis comes up at that address: the next retry rolls out
    try:
        await kube.wait_condition("mcpservers", "fetch", "Accepted", status="True")
        deployment = await kube.wait_child("Deployment", "fetch")
        assert (await kube.get("mcpservers", "fetch"))["metadata"]["generation"] == generation  # untouched
        reach = await kube.wait_condition("mcpservers", "fetch", "SessionStorageReachable", status="True")
        assert reach["reason"] == "RedisAnswers"

        # Steady state: rechecks go on (reachability PINGs), no write and no new handshake check.
        await operator.settled()
        writes, admitted = operator.writes(), checks(operator, "admitted")
        reconciles = operator.reconciles()

        async def rechecked() -> bool:
            return operator.reconciles() >= reconciles + 2

        await eventually(rechecked, within=4 * RECHECK + 5, what="two rechecks")
        assert operator.writes() == writes and checks(operator, "admitted") == admitted == 1

        # Redis goes away: the rolled-out workload stays accepted and keeps its children as they are.
        redis.kill()
        down = await kube.wait_condition("mcpservers", "fetch", "SessionStorageReachable", status="False")
        assert down["reason"] == "RedisUnreachable"
        accepted = condition(await kube.get("mcpservers", "fetch"), "Accepted") or {}
        assert (accepted.get("status"), accepted.get("reason")) == ("True", "Accepted")
        assert digest(await kube.wait_child("Deployment", "fetch")) == digest(deployment)
        assert await kube.child("ConfigMap", "fetch-proxy") is not None
    finally:
        redis.stop()


async def test_wrong_password_refuses_until_the_secret_is_fixed(
    mcp_crds: Cluster, namespace: str, kube: Api, tmp_path: Path
) -> None:
    # A long recheck period: the first retry would come after 100 s, so acceptance within the wait below
    # comes from the Secret's watch event, not from the retry timer.
    settings = replace(SETTINGS, redis_recheck_seconds=600.0)
    with running_redis(tmp_path, password=PASSWORD) as redis:
        async with run_operator(mcp_crds.kubeconfig, namespace, settings=settings) as operator:
            await kube.create_secret("redis", {"password": WRONG})
            storage = {
                "provider": "redis",
                "address": redis.address,
                "passwordRef": {"name": "redis", "key": "password"},
            }
            await create_fetch(kube, storage)
            refused = await kube.wait_condition(
                "mcpservers", "fetch", "Accepted", reason="SessionStorageAuthFailed"
            )
            assert refused["message"].startswith("spec.sessionStorage.passwordRef: Redis at")
            assert "Secret 'redis' key 'password'" in refused["message"]
            assert "WRONGPASS" in refused["message"]  # Redis's own error text
            assert await eventually(lambda: warnings(kube, "SessionStorageAuthFailed"), what="a Warning")
            assert await kube.child("Deployment", "fetch") is None
            # Redis answered (it refused the password): reachable, and the password is nowhere.
            reach = condition(await kube.get("mcpservers", "fetch"), "SessionStorageReachable") or {}
            assert reach.get("status") == "True"
            seen = str(await kube.get("mcpservers", "fetch")) + str(
                await warnings(kube, "SessionStorageAuthFailed")
            )
            assert WRONG not in seen and PASSWORD not in seen

            encoded = base64.b64encode(PASSWORD.encode()).decode()
            await kube.core.patch_namespaced_secret("redis", kube.ns, {"data": {"password": encoded}})
            await kube.wait_condition("mcpservers", "fetch", "Accepted", status="True")
            deployment = await kube.wait_child("Deployment", "fetch")
            config = (await kube.wait_child("ConfigMap", "fetch-proxy"))["data"]["proxy.json"]
            assert PASSWORD not in config and WRONG not in config

            # A changed connection that Redis does not take: refused, and nothing rolls.
            await operator.settled()
            elsewhere = f"127.0.0.1:{free_port()}"
            await kube.patch("mcpservers", "fetch", {"spec": {"sessionStorage": {"address": elsewhere}}})
            refused = await kube.wait_condition(
                "mcpservers", "fetch", "Accepted", reason="SessionStorageUnreachable"
            )
            assert refused["message"].startswith(f"spec.sessionStorage.address: Redis at {elsewhere}")
            assert digest(await kube.wait_child("Deployment", "fetch")) == digest(deployment)
            assert (await kube.wait_child("ConfigMap", "fetch-proxy"))["data"]["proxy.json"] == config


async def test_a_gateway_and_a_remote_proxy_are_refused_the_same_way(operator: Operator, kube: Api) -> None:
    nowhere = {"provider": "redis", "address": f"127.0.0.1:{free_port()}"}
    await kube.create("mcpgroups", {"kind": "MCPGroup", "metadata": {"name": "team"}, "spec": {}})
    gateway = {"groupRef": {"name": "team"}, "incomingAuth": {"type": "anonymous"}, "sessionStorage": nowhere}
    await kube.create(
        "virtualmcpservers", {"kind": "VirtualMCPServer", "metadata": {"name": "gw"}, "spec": gateway}
    )
    remote = {"remoteUrl": "https://mcp.example.com/mcp", "sessionStorage": nowhere}
    await kube.create(
        "mcpremoteproxies", {"kind": "MCPRemoteProxy", "metadata": {"name": "remote"}, "spec": remote}
    )
    for plural, name in (("virtualmcpservers", "gw"), ("mcpremoteproxies", "remote")):
        refused = await kube.wait_condition(plural, name, "Accepted", reason="SessionStorageUnreachable")
        assert refused["message"].startswith("spec.sessionStorage.address: Redis at 127.0.0.1:")
        assert await kube.child("Deployment", name) is None


async def test_the_check_makes_the_pods_handshake_with_a_real_redis(tmp_path: Path) -> None:
    with running_redis(tmp_path, password=PASSWORD) as redis:
        port = redis.port
        assert await check_redis("127.0.0.1", port, 1.0, PASSWORD.encode(), 15) is None
        wants = await check_redis("127.0.0.1", port, 1.0, None, 0)
        assert wants is not None and (wants.stage, wants.detail) == (
            "auth",
            "NOAUTH Authentication required.",
        )
        wrong = await check_redis("127.0.0.1", port, 1.0, WRONG.encode(), 0)
        assert wrong is not None and wrong.stage == "auth" and wrong.detail.startswith("WRONGPASS")
        assert WRONG not in wrong.detail
        db = await check_redis("127.0.0.1", port, 1.0, PASSWORD.encode(), 16)  # 16 databases: 0-15
        assert db is not None and (db.stage, db.detail) == ("select", "ERR DB index is out of range")
    gone = await check_redis("127.0.0.1", port, 1.0, PASSWORD.encode(), 0)
    assert gone is not None and (gone.stage, gone.detail) == ("connect", "Connection refused")
