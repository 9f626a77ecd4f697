"""What two proxy replicas do when their Redis fails (docs/scaling.md, "Faults").

Promised: no request waits longer than about the configured timeout; a session keeps working on the
replica that holds it; a replica that cannot read a session's record answers the MCP "Session not found"
(404), on which clients start a new session; new sessions fall back to the replica's memory; per-user
rate limits fail closed (429) unless ``failureMode: open``; ``mcp_redis_up`` says 0 meanwhile; once
Redis is back (even empty) sessions are shared again.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.dataplane.fastpathutil import request
from tests.support.gateway_processes import fixture_server, free_port, wait_until
from tests.support.redis_server import RedisServer
from tests.support.replicas import Replica, proxy_replica, stopped_at_exit

pytestmark = pytest.mark.slow

TIMEOUT = 0.25
"""``sessionStorage.timeout`` of the replicas."""
BOUND = 3.0
"""Longest a request may take while Redis misbehaves: the timeout, twice, plus a loaded machine's slack."""
LEGACY = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def proxy_config(backend_url: str, address: str, **extra: Any) -> dict[str, Any]:
    backend = {"type": "http", "url": backend_url, "transport": "streamable-http"}
    storage = {"provider": "redis", "address": address, "timeout": f"{int(TIMEOUT * 1000)}ms"}
    return {"name": "faulty", "backend": backend, "sessionStorage": storage, **extra}


@pytest.fixture(scope="module")
def backend_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    backend = fixture_server("fx", port, tmp_path_factory.mktemp("faults-backend"))
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        backend.stop()


def _body(response: httpx2.Response) -> Any:
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        data = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
        return json.loads(data[-1])
    return response.json() if response.content else None


def timed_post(http: httpx2.Client, url: str, body: Any, headers: dict[str, str]) -> httpx2.Response:
    start = time.monotonic()
    response = http.post(url, content=json.dumps(body), headers=headers)
    assert time.monotonic() - start < BOUND, f"{body.get('method')} took {time.monotonic() - start:.1f}s"
    return response


def open_session(http: httpx2.Client, replica: Replica) -> str:
    params = {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "0"},
    }
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}
    response = timed_post(http, f"{replica.url}/mcp", body, LEGACY)
    assert response.status_code == 200, response.text
    session = response.headers["mcp-session-id"]
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    headers = {**LEGACY, "mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}
    assert timed_post(http, f"{replica.url}/mcp", initialized, headers).status_code == 202
    return session


def echo(http: httpx2.Client, replica: Replica, session: str, text: str) -> tuple[int, Any]:
    """``tools/call echo`` on ``session`` at ``replica``: the status and the JSON-RPC answer."""
    body = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"message": text}},
    }
    headers = {**LEGACY, "mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}
    response = timed_post(http, f"{replica.url}/mcp", body, headers)
    return response.status_code, _body(response)


def assert_echoed(answer: tuple[int, Any], text: str) -> None:
    status, body = answer
    assert status == 200 and body["result"]["content"][0]["text"] == f"fx: {text}", answer


def assert_session_not_found(answer: tuple[int, Any]) -> None:
    status, body = answer
    assert status == 404 and body["error"]["message"] == "Session not found", answer


@contextlib.contextmanager
def two_replicas(
    backend_url: str, workdir: Path, prefix: str
) -> Iterator[tuple[RedisServer, list[Replica], httpx2.Client]]:
    """A Redis, two proxy replicas sharing it, and an HTTP client; all stopped at the end."""
    redis = RedisServer(workdir)
    redis.start()
    try:
        config = proxy_config(backend_url, redis.address)
        replicas = [proxy_replica(f"{prefix}-{i}", config, workdir) for i in range(2)]
        with stopped_at_exit(replicas), httpx2.Client(timeout=30) as http:
            yield redis, replicas, http
    finally:
        redis.stop()


def test_killed_then_restarted_empty(backend_url: str, tmp_path: Path) -> None:
    with two_replicas(backend_url, tmp_path, "k") as (redis, replicas, http):
        shared = open_session(http, replicas[0])
        assert_echoed(echo(http, replicas[1], shared, "crossed"), "crossed")

        redis.kill()  # mid-traffic
        assert_echoed(echo(http, replicas[0], shared, "still here"), "still here")  # both hold it now
        assert_echoed(echo(http, replicas[1], shared, "and here"), "and here")
        local = open_session(http, replicas[0])  # kept in replica 0's memory
        assert_echoed(echo(http, replicas[0], local, "local"), "local")
        assert_session_not_found(echo(http, replicas[1], local, "elsewhere"))
        assert all(r.metric("mcp_redis_up") == 0 for r in replicas)
        assert replicas[0].metric("mcp_sessions_shared_total", event="local_only") == 1

        redis.start()  # the same address, empty
        later = wait_until(
            lambda: _opened_and_shared(http, replicas), timeout=20, what="sessions shared again"
        )
        assert_echoed(echo(http, replicas[1], later, "shared again"), "shared again")
        assert_session_not_found(echo(http, replicas[1], local, "lost"))  # its record never reached Redis
        assert replicas[1].metric("mcp_redis_up") == 1


def _opened_and_shared(http: httpx2.Client, replicas: list[Replica]) -> str | None:
    session = open_session(http, replicas[0])
    return session if replicas[0].metric("mcp_redis_up") == 1 else None


def test_slow_redis_costs_at_most_the_timeout(backend_url: str, tmp_path: Path) -> None:
    with two_replicas(backend_url, tmp_path, "s") as (redis, replicas, http):
        session = open_session(http, replicas[0])
        sleeper = threading.Thread(target=lambda: redis.client().execute_command("DEBUG", "SLEEP", "3"))
        sleeper.start()
        try:
            wait_until(lambda: redis_is_busy(redis), timeout=5, what="DEBUG SLEEP running")
            assert_session_not_found(echo(http, replicas[1], session, "slow"))  # within BOUND
            assert_echoed(echo(http, replicas[0], session, "local"), "local")
        finally:
            sleeper.join()
        later = wait_until(
            lambda: _opened_and_shared(http, replicas), timeout=20, what="Redis answering again"
        )
        assert_echoed(echo(http, replicas[1], later, "after"), "after")


def redis_is_busy(redis: RedisServer) -> bool:
    try:
        redis.client(timeout=0.2).ping()
    except Exception:
        return True
    return False


def test_unreachable_at_start_serves_from_memory_and_limits_fail_closed(
    backend_url: str, tmp_path: Path
) -> None:
    nowhere = f"127.0.0.1:{free_port()}"  # nothing listens there
    per_user = {"perUser": {"maxTokens": 100, "refillPeriod": "1m"}}
    closed = proxy_replica("closed", proxy_config(backend_url, nowhere, rateLimiting=per_user), tmp_path)
    opened = proxy_replica(
        "open", proxy_config(backend_url, nowhere, rateLimiting={**per_user, "failureMode": "open"}), tmp_path
    )
    with stopped_at_exit([closed, opened]), httpx2.Client(timeout=30) as http:
        body, headers = request("tools/call", {"name": "echo", "arguments": {"message": "x"}})
        refused = timed_post(http, f"{closed.url}/mcp", body, headers)
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        assert timed_post(http, f"{opened.url}/mcp", body, headers).status_code == 200
        session = open_session(http, opened)  # sessions: this replica's memory
        assert_echoed(echo(http, opened, session, "memory"), "memory")
        assert closed.metric("mcp_redis_up") == 0 and opened.metric("mcp_redis_up") == 0


def test_the_password_comes_from_the_environment_and_a_wrong_one_counts_as_unreachable(
    backend_url: str, tmp_path: Path
) -> None:
    redis = RedisServer(tmp_path, password="s3cret")
    redis.start()
    storage = proxy_config(backend_url, redis.address)
    storage["sessionStorage"]["passwordRef"] = {"env": "REDIS_PASSWORD"}
    right = [proxy_replica(f"pw-{i}", storage, tmp_path, env={"REDIS_PASSWORD": "s3cret"}) for i in range(2)]
    wrong = proxy_replica("pw-wrong", storage, tmp_path, env={"REDIS_PASSWORD": "guess"})
    with stopped_at_exit([*right, wrong]), httpx2.Client(timeout=30) as http:
        session = open_session(http, right[0])
        assert_echoed(echo(http, right[1], session, "authenticated"), "authenticated")
        assert_session_not_found(echo(http, wrong, session, "refused"))
        assert wrong.metric("mcp_redis_up") == 0
        assert "s3cret" not in (tmp_path / "pw-0.json").read_text()  # the config file names the variable only
    redis.stop()
