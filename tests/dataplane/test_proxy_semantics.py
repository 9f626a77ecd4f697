"""Proxy semantics against the in-repo fixture server over stdio, through every front.

One proxy process serves the whole module (its start-up dominates on a loaded machine); it is configured
through a config file: the fixture as a stdio backend with ``FIXTURE_CANCEL_FILE`` in its environment, a
tool filter (``test_error_handling`` denied, ``add`` renamed to ``plus`` and re-described) and audit lines
with arguments. The backend-crash test runs last in the module because it restarts the backend.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.shared.exceptions import MCPError

from tests.dataplane.fastpathutil import config as fixture_proxy_config
from tests.dataplane.proxyutil import run_proxy
from tests.support.processes import json_records

pytestmark = pytest.mark.slow

ACCEPT = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


class Proxy:
    def __init__(self, base: str, cancel_file: Path, log: Path) -> None:
        self.base = base
        self.cancel_file = cancel_file
        self.log = log

    def clients(self) -> list[tuple[str, Callable[[], AbstractAsyncContextManager[Client]]]]:
        """One client factory per front: /mcp modern, /mcp legacy session, legacy /sse."""
        return [
            ("mcp-modern", lambda: Client(f"{self.base}/mcp", mode="auto")),
            ("mcp-legacy", lambda: Client(f"{self.base}/mcp", mode="legacy")),
            ("sse", lambda: Client(sse_client(f"{self.base}/sse"), mode="legacy")),
        ]

    def metric(self, line_prefix: str) -> float:
        text = httpx2.get(f"{self.base}/metrics").text
        values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_prefix)]
        return sum(values)

    def audit(self) -> list[dict[str, Any]]:
        records = json_records(self.log.read_text(encoding="utf-8", errors="replace"))
        return [r for r in records if r.get("event") == "tools/call"]


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    tmp = tmp_path_factory.mktemp("proxy")
    cancel_file = tmp / "cancelled"
    config = {**fixture_proxy_config(cancel_file), "audit": {"enabled": True, "includeArguments": True}}
    log = tmp / "proxy.log"
    with run_proxy(config=config, tmp=tmp, log=log) as base:
        yield Proxy(base, cancel_file, log)


async def _each_front(proxy: Proxy, check: Callable[[str, Client], Awaitable[None]]) -> None:
    for front, connect in proxy.clients():
        async with connect() as client:
            await check(front, client)


# -- filters through the config file ------------------------------------------------------------------


async def test_filter_renames_redescribes_and_hides_tools(proxy: Proxy) -> None:
    async def check(front: str, client: Client) -> None:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert "plus" in tools, front
        assert tools["plus"].description == "Adds two integers (renamed).", front
        assert "add" not in tools, f"{front}: the original name of a renamed tool is listed"
        assert "test_error_handling" not in tools, f"{front}: a denied tool is listed"
        assert {"echo", "slow", "crash"} <= set(tools), front
        result = await client.call_tool("plus", {"a": 40, "b": 2})
        assert result.structured_content == {"result": 42}, front
        for hidden in ("add", "test_error_handling"):
            with pytest.raises(MCPError) as caught:
                await client.call_tool(hidden, {"a": 1, "b": 1})
            assert caught.value.code == types.INVALID_PARAMS, front
            assert hidden in caught.value.error.message, front

    await _each_front(proxy, check)


async def test_audit_line_per_call_with_caller_tool_outcome(proxy: Proxy) -> None:
    async with Client(f"{proxy.base}/mcp", mode="auto") as client:
        await client.call_tool("echo", {"text": "audited-call"})
        with pytest.raises(MCPError):
            await client.call_tool("test_error_handling", {})
    records = proxy.audit()
    ok = [r for r in records if r.get("arguments") == {"text": "audited-call"}]
    assert len(ok) == 1
    assert ok[0]["tool"] == "echo" and ok[0]["outcome"] == "ok" and ok[0]["caller"] == "127.0.0.1"
    assert ok[0]["durationMs"] >= 0
    denied = [r for r in records if r["tool"] == "test_error_handling"]
    assert denied and denied[-1]["outcome"] == "denied" and denied[-1]["backendTool"] is None
    assert proxy.metric('mcp_proxy_requests_total{method="tools/call",outcome="ok",tool="echo"}') >= 1


async def test_no_info_line_per_request_or_session_but_the_audit_line(proxy: Proxy) -> None:
    def other_info_lines() -> list[dict[str, Any]]:
        records = json_records(proxy.log.read_text(encoding="utf-8", errors="replace"))
        return [r for r in records if r["level"] == "info" and r["event"] != "tools/call"]

    before = other_info_lines()
    calls = 0
    for _, connect in proxy.clients():  # a new session on each session-era front
        async with connect() as client:
            for _ in range(3):
                await client.call_tool("echo", {"text": "quiet"})
                calls += 1
    quiet = [r for r in proxy.audit() if r.get("arguments") == {"text": "quiet"}]
    assert len(quiet) == calls  # each call is still audited
    assert other_info_lines() == before


async def test_active_sessions_gauge_counts_session_era_fronts(proxy: Proxy) -> None:
    async def gauge_becomes(value: float) -> None:
        with anyio.fail_after(10):
            while proxy.metric("mcp_proxy_active_sessions") != value:  # noqa: ASYNC110 (polling /metrics)
                await anyio.sleep(0.05)

    baseline = proxy.metric("mcp_proxy_active_sessions")
    fronts = dict(proxy.clients())
    async with fronts["mcp-legacy"]() as legacy, fronts["sse"]() as sse, fronts["mcp-modern"]() as modern:
        for client in (legacy, sse, modern):
            await client.call_tool("echo", {"text": "x"})
        await gauge_becomes(baseline + 2)  # the stateless 2026-07-28 era holds no session
    await gauge_becomes(baseline)


# -- progress and cancellation -----------------------------------------------------------------------


async def test_progress_reaches_the_calling_front_request(proxy: Proxy) -> None:
    async def check(front: str, client: Client) -> None:
        seen: list[tuple[float, float | None, str | None]] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append((progress, total, message))

        result = await client.call_tool("slow", {"seconds": 0.5}, progress_callback=on_progress)
        assert not result.is_error, front
        assert seen == [(float(i), 5.0, f"step {i}") for i in range(1, 6)], front

    await _each_front(proxy, check)


async def test_cancelling_a_front_request_cancels_the_backend_call(proxy: Proxy) -> None:
    async def check(front: str, client: Client) -> None:
        proxy.cancel_file.unlink(missing_ok=True)
        with anyio.move_on_after(1.0) as scope:
            await client.call_tool("slow", {"seconds": 30})
        assert scope.cancelled_caught, front
        await _wait_for_file(proxy.cancel_file, 10)
        # The shared backend session is still healthy after the cancellation.
        assert (await client.call_tool("echo", {"text": front})).structured_content == {"result": front}

    await _each_front(proxy, check)
    assert proxy.metric('mcp_proxy_requests_total{method="tools/call",outcome="cancelled"') >= 3


async def _wait_for_file(path: Path, limit: float) -> None:
    with anyio.fail_after(limit):
        while not await anyio.Path(path).exists():  # noqa: ASYNC110 (another process writes it)
            await anyio.sleep(0.05)


# -- many clients on one backend ---------------------------------------------------------------------


async def test_twenty_concurrent_clients_get_their_own_answers(proxy: Proxy) -> None:
    fronts = proxy.clients()
    answers: dict[int, tuple[Any, Any, int]] = {}

    async def one(n: int) -> None:
        seen = 0

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            nonlocal seen
            seen += 1

        async with fronts[n % len(fronts)][1]() as client:
            echoed = await client.call_tool("echo", {"text": f"client-{n}"})
            summed = await client.call_tool("plus", {"a": n, "b": 1000})
            await client.call_tool("slow", {"seconds": 0.2}, progress_callback=on_progress)
            answers[n] = (echoed.structured_content, summed.structured_content, seen)

    with anyio.fail_after(120):
        async with anyio.create_task_group() as tg:
            for n in range(20):
                tg.start_soon(one, n)
    assert answers == {n: ({"result": f"client-{n}"}, {"result": n + 1000}, 2) for n in range(20)}


# -- bad input -----------------------------------------------------------------------------------------


def test_malformed_json_is_a_parse_error(proxy: Proxy) -> None:
    response = httpx2.post(
        f"{proxy.base}/mcp", content=b'{"jsonrpc": "2.0", "id": 1, "method"', headers=ACCEPT
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == types.PARSE_ERROR


def test_oversized_body_is_413(proxy: Proxy) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": "x" * 70_000}})
    response = httpx2.post(f"{proxy.base}/mcp", content=body.encode(), headers=ACCEPT)
    assert response.status_code == 413


async def test_unknown_method_is_method_not_found(proxy: Proxy) -> None:
    async def check(front: str, client: Client) -> None:
        request = types.Request[dict[str, Any] | None, str](method="no/such-method", params={})
        with pytest.raises(MCPError) as caught:
            await client.session.send_request(request, types.EmptyResult)
        assert caught.value.code == types.METHOD_NOT_FOUND, front

    await _each_front(proxy, check)


def test_host_and_origin_checks(proxy: Proxy) -> None:
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    bad_host = httpx2.post(f"{proxy.base}/mcp", json=ping, headers={**ACCEPT, "host": "attacker.example"})
    assert bad_host.status_code == 421
    bad_origin = httpx2.post(
        f"{proxy.base}/mcp", json=ping, headers={**ACCEPT, "origin": "https://attacker.example"}
    )
    assert bad_origin.status_code == 403
    assert httpx2.get(f"{proxy.base}/sse", headers={"host": "attacker.example"}).status_code == 421
    # The probes answer whatever the Host (kubelet probes by pod IP).
    assert httpx2.get(f"{proxy.base}/readyz", headers={"host": "10.1.2.3:8080"}).status_code == 200


async def test_allowed_origin_passes(proxy: Proxy) -> None:
    origin = proxy.base  # a loopback origin
    async with (
        httpx2.AsyncClient(headers={"origin": origin}) as http,
        Client(streamable_http(proxy.base, http), mode="auto") as client,
    ):
        assert (await client.call_tool("echo", {"text": "hi"})).structured_content == {"result": "hi"}


def streamable_http(base: str, http: httpx2.AsyncClient) -> Any:
    from mcp.client.streamable_http import streamable_http_client  # noqa: PLC0415

    return streamable_http_client(f"{base}/mcp", http_client=http)


# -- a backend that dies mid-call (last: it restarts the backend) -------------------------------------


async def test_zz_backend_crash_fails_the_call_then_recovers(proxy: Proxy) -> None:
    restarts = proxy.metric("mcp_proxy_backend_restarts_total")
    ready_states: list[int] = []
    async with Client(f"{proxy.base}/mcp", mode="auto") as client, httpx2.AsyncClient() as http:
        with anyio.fail_after(20), pytest.raises(MCPError) as caught:
            await client.call_tool("crash", {})
        assert caught.value.code == -32001
        assert "backend" in caught.value.error.message
        with anyio.fail_after(60):
            while True:
                status = (await http.get(f"{proxy.base}/readyz")).status_code
                ready_states.append(status)
                if status == 200:
                    break
                await anyio.sleep(0.02)
        result = await client.call_tool("echo", {"text": "after the restart"})
    assert result.structured_content == {"result": "after the restart"}
    assert ready_states[0] == 503, "/readyz did not report the dead backend"
    assert proxy.metric("mcp_proxy_backend_restarts_total") == restarts + 1
