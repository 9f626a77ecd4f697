"""The SessionStorageReachable condition from a probe's answer, and the probe's sharing of answers."""

from __future__ import annotations

import asyncio

from controller.reconcilers.redis_probe import FRESH_SECONDS, RedisProbe, probe_host
from controller.reconcilers.storage_status import (
    SESSION_STORAGE_REACHABLE,
    Reachability,
    StorageMonitor,
    with_reachability,
)

ADDRESS = "redis.cache.svc:6379"


def step(previous: dict, reach: Reachability | None) -> tuple[dict, list[tuple[str, str, str]]]:
    status = {
        "phase": "Running",
        "conditions": [c for c in previous.get("conditions", []) if c["type"] == "Ready"],
    }
    return with_reachability(status, [], previous, 3, reach)


def reachable(status: dict) -> dict | None:
    return next((c for c in status["conditions"] if c["type"] == SESSION_STORAGE_REACHABLE), None)


def test_down_is_a_warning_naming_the_address_and_recovery_is_announced_once() -> None:
    ready = {"type": "Ready", "status": "True", "reason": "Running", "message": "", "lastTransitionTime": "t"}
    first, events = step({"conditions": [ready]}, Reachability(ADDRESS, None))
    assert reachable(first)["status"] == "True" and events == []  # the expected case: no Event
    down, events = step(first, Reachability(ADDRESS, "Connection refused"))
    cond = reachable(down)
    assert (cond["status"], cond["reason"], cond["observedGeneration"]) == ("False", "RedisUnreachable", 3)
    assert cond["message"].startswith(f"Redis at {ADDRESS} does not answer (Connection refused)")
    assert [(t, r) for t, r, _ in events] == [("Warning", "RedisUnreachable")]
    assert [c["type"] for c in down["conditions"]] == ["Ready", SESSION_STORAGE_REACHABLE]
    back, events = step(down, Reachability(ADDRESS, None))
    assert reachable(back)["reason"] == "RedisAnswers"
    assert [(t, r) for t, r, _ in events] == [("Normal", "RedisAnswers")]
    again, events = step(back, Reachability(ADDRESS, None))
    assert again == back and events == []  # unchanged: the status write is skipped


def test_the_condition_goes_when_sessions_leave_redis() -> None:
    down, _ = step({}, Reachability(ADDRESS, "no answer within 1s"))
    gone, events = step(down, None)
    assert reachable(gone) is None and events == []


def test_recheck_is_sooner_while_redis_is_down() -> None:
    assert StorageMonitor.recheck_after(None, 30) is None
    assert StorageMonitor.recheck_after(Reachability(ADDRESS, None), 30) == 30
    assert StorageMonitor.recheck_after(Reachability(ADDRESS, "refused"), 30) == 5


def test_short_names_are_probed_in_the_workloads_namespace() -> None:
    assert probe_host("redis", "team") == "redis.team.svc"
    assert probe_host("redis.cache", "team") == "redis.cache"
    assert probe_host("10.0.0.7", "team") == "10.0.0.7"
    assert probe_host("::1", "team") == "::1"
    assert probe_host("localhost", "team") == "localhost"


async def test_one_probe_answers_every_workload_of_an_address_for_a_while() -> None:
    now = [100.0]
    calls: list[tuple[str, int, float]] = []
    gate = asyncio.Event()

    async def ping(host: str, port: int, wait: float) -> str | None:
        calls.append((host, port, wait))
        await gate.wait()
        return "Connection refused"

    probe = RedisProbe(ping, clock=lambda: now[0])
    together = [asyncio.create_task(probe.problem("redis:6379", "team", 1.0)) for _ in range(3)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*together) == ["Connection refused"] * 3
    assert await probe.problem("redis:6379", "team", 1.0) == "Connection refused"
    assert calls == [("redis.team.svc", 6379, 1.0)]
    now[0] += FRESH_SECONDS
    await probe.problem("redis:6379", "team", 1.0)
    await probe.problem("redis:6379", "other", 1.0)  # another namespace's Service of that name
    assert calls[1:] == [("redis.team.svc", 6379, 1.0), ("redis.other.svc", 6379, 1.0)]
