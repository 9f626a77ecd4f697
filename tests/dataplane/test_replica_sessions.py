"""Two proxy replicas and two gateway replicas sharing sessions through a real Redis.

Each session's client sends its requests to the replicas in turn (:class:`tests.support.replicas.
RoundRobin`), so a 2025-11-25 session is opened on one process and continued on the other from its
record in Redis; 2026-07-28 requests carry no session and go anywhere. Backends are the fixture server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.support.gateway_processes import Proc, fixture_server, free_port
from tests.support.redis_server import RedisServer, running_redis
from tests.support.replicas import (
    Replica,
    gateway_replica,
    many_sessions,
    proxy_replica,
    stopped_at_exit,
)

pytestmark = pytest.mark.slow

SESSIONS = int(os.environ.get("MCP_TEST_REPLICA_SESSIONS", "200"))
"""Sessions per (kind, era) case. The acceptance count is 1000 (MCP_TEST_REPLICA_SESSIONS=1000: about
three minutes per case on 2 shared cores, so the suite runs 200)."""


@dataclass
class Stack:
    redis: RedisServer
    backend_url: str
    logdir: Path
    proxies: list[Replica]
    gateways: list[Replica]


def storage(redis: RedisServer, prefix: str) -> dict[str, Any]:
    return {"provider": "redis", "address": redis.address, "keyPrefix": prefix}


def proxy_config(backend_url: str, session_storage: dict[str, Any], **extra: Any) -> dict[str, Any]:
    backend = {"type": "http", "url": backend_url, "transport": "streamable-http"}
    return {"name": "fx-proxy", "backend": backend, "sessionStorage": session_storage, **extra}


def gateway_config(backend_url: str, session_storage: dict[str, Any], **extra: Any) -> dict[str, Any]:
    backends = [{"name": "fx", "url": backend_url, "transport": "streamable-http"}]
    return {"name": "gw", "backends": backends, "sessionStorage": session_storage, **extra}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    logdir = tmp_path_factory.mktemp("replicas")
    backend_port = free_port()
    backend: Proc = fixture_server("fx", backend_port, logdir)
    backend_url = f"http://127.0.0.1:{backend_port}/mcp"
    try:
        with running_redis(logdir) as redis:
            proxies = [
                proxy_replica(f"proxy-{i}", proxy_config(backend_url, storage(redis, "p:")), logdir)
                for i in range(2)
            ]
            with stopped_at_exit(proxies):
                gateways = [
                    gateway_replica(f"gw-{i}", gateway_config(backend_url, storage(redis, "g:")), logdir)
                    for i in range(2)
                ]
                with stopped_at_exit(gateways):
                    yield Stack(redis, backend_url, logdir, proxies, gateways)
    finally:
        backend.stop()


@pytest.mark.parametrize("mode", ["legacy", "auto"])
@pytest.mark.parametrize(("kind", "tool"), [("proxy", "echo"), ("gateway", "fx_echo")])
async def test_sessions_alternating_between_replicas_all_succeed(
    stack: Stack, kind: str, tool: str, mode: str
) -> None:
    replicas = stack.proxies if kind == "proxy" else stack.gateways
    resumed_before = [r.metric("mcp_sessions_shared_total", event="resumed") for r in replicas]
    with anyio.fail_after(600):
        failures = await many_sessions(replicas, mode, tool, SESSIONS)
    assert failures == [], f"{len(failures)} of {SESSIONS} sessions failed, e.g. {failures[:3]}"
    resumed = [
        r.metric("mcp_sessions_shared_total", event="resumed") - b
        for r, b in zip(replicas, resumed_before, strict=True)
    ]
    if mode == "legacy":  # every session was continued by the replica that did not open it
        assert all(n >= SESSIONS / 2 for n in resumed), resumed
    else:  # 2026-07-28: no session to continue
        assert resumed == [0, 0]


async def test_without_shared_storage_the_other_replica_does_not_know_the_session(
    stack: Stack, tmp_path: Path
) -> None:
    """The control: memory sessions, the same alternation, and the second request gets the SDK's 404."""
    memory = {"provider": "memory"}
    replicas = [
        proxy_replica(f"mem-{i}", proxy_config(stack.backend_url, memory), tmp_path) for i in range(2)
    ]
    with stopped_at_exit(replicas), anyio.fail_after(60):
        failures = await many_sessions(replicas, "legacy", "echo", 2)
    assert len(failures) == 2
    assert all("Session not found" in f or "404" in f for f in failures), failures


async def test_a_deleted_session_is_not_resumed_elsewhere(stack: Stack) -> None:
    """The client's DELETE ends the session on every replica: its record is gone from Redis."""
    replicas = stack.proxies
    before = len(stack.redis.client().keys("p:session:*"))
    with anyio.fail_after(60):
        assert await many_sessions(replicas, "legacy", "echo", 3) == []
    assert len(stack.redis.client().keys("p:session:*")) == before
