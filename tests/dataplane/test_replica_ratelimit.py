"""Rate limits shared by two proxy replicas through a real Redis, and memory buckets without it.

Calls are raw 2026-07-28 ``tools/call`` POSTs alternating between the replicas, so the status, the
``Retry-After`` header and the body ToolHive returns are checked as a client sees them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.dataplane.fastpathutil import request
from tests.support.gateway_processes import fixture_server, free_port
from tests.support.processes import json_records
from tests.support.redis_server import RedisServer, running_redis
from tests.support.replicas import Replica, proxy_replica, stopped_at_exit

pytestmark = pytest.mark.slow

PER_USER = 20
"""The per-user limit: 20 calls per minute, all of them available at once (the burst)."""
LIMITS = {
    "perUser": {"maxTokens": PER_USER, "refillPeriod": "1m"},
    "tools": [{"name": "add", "shared": {"maxTokens": 3, "refillPeriod": "1h"}}],
}


@dataclass
class Stack:
    redis: RedisServer
    backend_url: str
    replicas: list[Replica]


def config(backend_url: str, session_storage: dict[str, Any], limits: dict[str, Any]) -> dict[str, Any]:
    backend = {"type": "http", "url": backend_url, "transport": "streamable-http"}
    return {"name": "limited", "backend": backend, "sessionStorage": session_storage, "rateLimiting": limits}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    logdir = tmp_path_factory.mktemp("ratelimit")
    port = free_port()
    backend = fixture_server("fx", port, logdir)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        with running_redis(logdir) as redis:
            storage = {"provider": "redis", "address": redis.address}
            replicas = [proxy_replica(f"limited-{i}", config(url, storage, LIMITS), logdir) for i in range(2)]
            with stopped_at_exit(replicas):
                yield Stack(redis, url, replicas)
    finally:
        backend.stop()


def user(address: str) -> httpx2.Client:
    """A client calling from ``address`` (on loopback): without inbound auth, its user for the limits."""
    return httpx2.Client(transport=httpx2.HTTPTransport(local_address=address), timeout=30)


def call(http: httpx2.Client, replica: Replica, tool: str, arguments: dict[str, Any]) -> httpx2.Response:
    body, headers = request("tools/call", {"name": tool, "arguments": arguments})
    return http.post(f"{replica.url}/mcp", content=json.dumps(body), headers=headers)


def test_a_per_user_limit_holds_across_both_replicas(stack: Stack) -> None:
    start = time.monotonic()
    statuses: list[int] = []
    limited: list[httpx2.Response] = []
    with user("127.0.0.2") as http:
        for i in range(3 * PER_USER):
            response = call(http, stack.replicas[i % 2], "echo", {"message": f"m{i}"})
            statuses.append(response.status_code)
            if response.status_code == 429:
                limited.append(response)
            else:
                assert response.status_code == 200, response.text
                assert response.json()["result"]["content"][0]["text"] == f"fx: m{i}"
    refilled = PER_USER * (time.monotonic() - start) / 60  # tokens that came back while the test ran
    admitted = statuses.count(200)
    assert PER_USER <= admitted <= PER_USER + int(refilled) + 1, (admitted, refilled)
    assert len(limited) == len(statuses) - admitted
    first = limited[0]
    assert 1 <= int(first.headers["retry-after"]) <= 60 / PER_USER + 1
    error = first.json()
    assert error["jsonrpc"] == "2.0" and error["id"] == 41
    assert error["error"]["code"] == 429 and error["error"]["message"] == "Rate limit exceeded"
    assert error["error"]["data"]["retryAfterSeconds"] == int(first.headers["retry-after"])
    counted = sum(
        r.metric("mcp_proxy_requests_total", method="tools/call", outcome="rate_limited")
        for r in stack.replicas
    )
    assert counted == len(limited)
    audits = [
        record
        for replica in stack.replicas
        for record in json_records(replica.proc.log.read_text())
        if record.get("outcome") == "rate_limited"
    ]
    assert len(audits) == len(limited) and {a["tool"] for a in audits} == {"echo"}
    assert {a["caller"] for a in audits} == {"127.0.0.2"}
    with user("127.0.0.4") as other:  # another user has a bucket of their own
        assert call(other, stack.replicas[0], "echo", {"message": "other"}).status_code == 200


def test_one_redis_round_trip_per_call_and_none_for_other_requests(stack: Stack) -> None:
    replica = stack.replicas[0]
    before = replica.metric("mcp_redis_commands_total", purpose="ratelimit")
    with user("127.0.0.5") as http:
        for _ in range(5):
            call(http, replica, "echo", {"message": "x"})
        body, headers = request("tools/list", {})
        assert http.post(f"{replica.url}/mcp", content=json.dumps(body), headers=headers).status_code == 200
    assert replica.metric("mcp_redis_commands_total", purpose="ratelimit") - before == 5


def test_a_tool_limit_is_shared_by_every_caller_on_both_replicas(stack: Stack) -> None:
    """Two users alternate on two replicas: the tool's shared bucket of 3 admits 3 calls in all."""
    with user("127.0.0.6") as first, user("127.0.0.7") as second:
        statuses = [
            call((first, second)[i % 2], stack.replicas[i % 2], "add", {"a": 1, "b": i}).status_code
            for i in range(6)
        ]
    assert statuses == [200, 200, 200, 429, 429, 429]


def test_memory_buckets_limit_each_replica_alone(stack: Stack, tmp_path: Path) -> None:
    limits = {"shared": {"maxTokens": 2, "refillPeriod": "1h"}}
    replicas = [
        proxy_replica(f"mem-{i}", config(stack.backend_url, {"provider": "memory"}, limits), tmp_path)
        for i in range(2)
    ]
    with stopped_at_exit(replicas), user("127.0.0.8") as http:
        statuses = [call(http, replicas[i % 2], "echo", {"message": "m"}).status_code for i in range(6)]
    # Two per replica: the documented per-pod behaviour of memory buckets.
    assert statuses == [200, 200, 200, 200, 429, 429]
