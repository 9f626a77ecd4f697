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
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.support.gateway_processes import Proc, fixture_server, free_port
from tests.support.redis_server import RedisServer, running_redis
from tests.support.replicas import (
    Replica,
    gateway_replica,
    proxy_replica,
    round_robin_client,
    stopped_at_exit,
)

pytestmark = pytest.mark.slow

SESSIONS = int(os.environ.get("MCP_TEST_REPLICA_SESSIONS", "200"))
"""Sessions per (kind, era) case. The acceptance count is 1000 (MCP_TEST_REPLICA_SESSIONS=1000: about
three minutes per case on 2 shared cores, so the suite runs 200)."""
CONCURRENCY = 25


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


async def one_session(replicas: list[Replica], first: int, mode: str, tool: str, text: str) -> str:
    """Open a session through the round-robin front, list, call ``tool`` twice; the last call's text."""
    ports = [r.port for r in replicas]
    async with round_robin_client(ports, first) as http:
        target = streamable_http_client(f"{replicas[0].url}/mcp", http_client=http)
        async with Client(target, mode=mode) as client:  # type: ignore[arg-type]
            tools = await client.list_tools()
            assert tool in {t.name for t in tools.tools}
            await client.call_tool(tool, {"message": f"{text}-warm"})
            result = await client.call_tool(tool, {"message": text})
    content = result.content[0]
    return str(getattr(content, "text", ""))


async def many_sessions(replicas: list[Replica], mode: str, tool: str, count: int) -> list[str]:
    """``count`` sessions, ``CONCURRENCY`` at a time; the failures (empty when all succeeded)."""
    failures: list[str] = []
    limiter = anyio.Semaphore(CONCURRENCY)

    async def run(i: int) -> None:
        async with limiter:
            try:
                text = await one_session(replicas, i % 2, mode, tool, f"s{i}")
                if text != f"fx: s{i}":
                    failures.append(f"session {i}: answered {text!r}")
            except Exception as exc:
                failures.append(f"session {i}: {exc!r}")

    async with anyio.create_task_group() as tg:
        for i in range(count):
            tg.start_soon(run, i)
    return failures


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
