"""Several replicas of the proxy or the gateway on loopback, and a client that alternates between them.

:class:`RoundRobin` is an HTTP transport for the SDK client that sends each request of one client to the
next replica in turn (what a Service without session affinity may do), so a 2025-11-25 session's
``initialize``, ``notifications/initialized``, GET stream and calls land on different processes.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from prometheus_client.parser import text_string_to_metric_families

from tests.support.gateway_processes import Proc, start, wait_http
from tests.support.processes import free_port, http_get

BIN = Path(sys.executable).parent
CONCURRENCY = 25


class RoundRobin(httpx2.AsyncBaseTransport):
    """Sends request i to ``ports[(first + i) % len(ports)]`` on 127.0.0.1."""

    def __init__(self, ports: Sequence[int], first: int = 0) -> None:
        self.ports = list(ports)
        self.turn = itertools.count(first)
        self.inner = httpx2.AsyncHTTPTransport()
        self.sent: list[int] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        port = self.ports[next(self.turn) % len(self.ports)]
        self.sent.append(port)
        request.url = request.url.copy_with(port=port)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def round_robin_client(ports: Sequence[int], first: int = 0) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=RoundRobin(ports, first), timeout=httpx2.Timeout(60.0))


def metric_value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels``, in exposition text."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


@dataclass
class Replica:
    """One proxy or gateway process and its port."""

    proc: Proc
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def metric(self, name: str, **labels: str) -> float:
        """A sample's value from the replica's /metrics (0 when absent)."""
        return metric_value(http_get(f"{self.url}/metrics")[1], name, **labels)


def proxy_replica(
    name: str, config: dict[str, Any], logdir: Path, env: dict[str, str] | None = None
) -> Replica:
    """``mcp-operator proxy --config FILE`` with ``config`` (its ``port`` set here); waits for /health."""
    port = free_port()
    path = logdir / f"{name}.json"
    path.write_text(json.dumps({**config, "port": port}))
    proc = start(name, [str(BIN / "mcp-operator"), "proxy", "--config", str(path)], logdir, env)
    wait_http(f"http://127.0.0.1:{port}/health", proc)
    return Replica(proc, port)


def gateway_replica(
    name: str, config: dict[str, Any], logdir: Path, env: dict[str, str] | None = None
) -> Replica:
    """``mcp-operator vmcp --config FILE --port P``; waits for /health."""
    port = free_port()
    path = logdir / f"{name}.json"
    path.write_text(json.dumps(config))
    argv = [str(BIN / "mcp-operator"), "vmcp", "--config", str(path), "--port", str(port)]
    proc = start(name, argv, logdir, env)
    wait_http(f"http://127.0.0.1:{port}/health", proc)
    return Replica(proc, port)


@contextlib.contextmanager
def stopped_at_exit(replicas: list[Replica]) -> Iterator[list[Replica]]:
    try:
        yield replicas
    finally:
        for replica in replicas:
            replica.proc.stop()


async def one_session(replicas: list[Replica], first: int, mode: str, tool: str, text: str) -> str:
    """Open a session through the round-robin front, list, call ``tool`` twice; the last call's text."""
    ports = [r.port for r in replicas]
    async with round_robin_client(ports, first) as http:
        target = streamable_http_client(f"{replicas[0].url}/mcp", http_client=http)
        async with Client(target, mode=mode) as client:
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
