"""The fast path on the 2025-11-25 session era (``gateway.fastpath`` with ``gateway.sdk_private``).

The same raw requests go to a session on the proxy with the fast path and to a session on the same proxy
without it (``build_proxy_app(fast_path=False)``), in front of the fixture over stdio. Each answer must
carry the same HTTP status and the same JSON-RPC messages in the same order. The fast path answers a
plain result as ``application/json`` where the SDK answers a one-event SSE stream (a POST may get either:
the client must accept both), and switches to SSE when a log message or a keep-alive has to go first.
``mcp_proxy_fast_path_requests_total`` shows which path served each request.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

import gateway.fastpath
from tests.dataplane.fastpathutil import SERVED, config, fast_route, proxies

pytestmark = pytest.mark.slow

VERSION = "2025-11-25"
BASE_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


async def open_session(
    http: httpx2.AsyncClient, base: str, capabilities: dict[str, Any] | None = None
) -> dict[str, str]:
    """initialize + notifications/initialized over raw HTTP; the headers of the session's requests."""
    init = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": VERSION,
            "capabilities": capabilities or {},
            "clientInfo": {"name": "session-fastpath-test", "version": "0"},
        },
    }
    opened = await http.post(f"{base}/mcp", content=json.dumps(init), headers=BASE_HEADERS)
    assert opened.status_code == 200, opened.text
    headers = {
        **BASE_HEADERS,
        "mcp-session-id": opened.headers["mcp-session-id"],
        "mcp-protocol-version": VERSION,
    }
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert (
        await http.post(f"{base}/mcp", content=json.dumps(initialized), headers=headers)
    ).status_code == 202
    return headers


def messages(response: httpx2.Response) -> list[Any]:
    """The JSON-RPC messages of an answer, whether plain JSON or an SSE stream."""
    content_type = response.headers.get("content-type", "")
    if content_type.startswith("text/event-stream"):
        return [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]
    if not response.content:
        return []
    return [response.json() if content_type.startswith("application/json") else response.text]


async def exchange(
    http: httpx2.AsyncClient, base: str, body: Any, headers: dict[str, str]
) -> tuple[int, list[Any]]:
    response = await http.post(f"{base}/mcp", content=json.dumps(body), headers=headers)
    return response.status_code, messages(response)


def call(method: str, params: dict[str, Any] | None = None, request_id: int = 41) -> dict[str, Any]:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        body["params"] = params
    return body


SESSION_FAST = [
    call("tools/list"),
    *(call(method, params) for method, params in SERVED[:6]),
    call("tools/call", {"name": "test_tool_with_logging", "arguments": {}}),  # log messages, then the result
    call("tools/call", {"name": "echo", "arguments": {"text": "m"}, "_meta": {"trace": "t-1"}}),
    *(call(method, params or None) for method, params in SERVED[6:]),  # without empty params
]
"""Session requests the fast path serves."""

SESSION_SDK = [
    call("tools/call", {"name": "add", "arguments": {"a": 1, "b": 1}}),  # hidden: renamed away
    call("tools/call", {"name": "test_error_handling", "arguments": {}}),  # denied
    call(
        "tools/call", {"name": "test_tool_with_progress", "arguments": {}, "_meta": {"progressToken": "p1"}}
    ),
    call("ping"),
    call("tools/call", {"name": "echo"}) | {"extra": 1},  # not a plain envelope
    [call("tools/list")],  # a batch
    {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 999}},  # none in flight
]
"""Session requests left to the SDK (its answer, message for message)."""


async def test_session_requests_answer_alike(tmp_path: Path) -> None:
    async with proxies(config(tmp_path / "cancelled")) as (fast, sdk), httpx2.AsyncClient(timeout=60) as http:
        before = await fast_route(fast)
        ours_headers, theirs_headers = await open_session(http, fast), await open_session(http, sdk)
        for body in SESSION_FAST + SESSION_SDK:
            ours = await exchange(http, fast, body, ours_headers)
            theirs = await exchange(http, sdk, body, theirs_headers)
            assert ours == theirs, body
        logged = await exchange(http, fast, SESSION_FAST[7], ours_headers)
        assert [m.get("method") for m in logged[1]] == ["notifications/message"] * 3 + [None]
        # What the SDK refuses before any session state: the same refusal from both.
        for headers in (
            {**ours_headers, "accept": "application/json"},
            {**ours_headers, "content-type": "text/plain"},
            {**ours_headers, "mcp-session-id": "no-such-session"},
        ):
            theirs_variant = {**headers, "mcp-session-id": theirs_headers["mcp-session-id"]}
            if headers["mcp-session-id"] == "no-such-session":
                theirs_variant = headers
            ours = await exchange(http, fast, SESSION_FAST[2], headers)
            theirs = await exchange(http, sdk, SESSION_FAST[2], theirs_variant)
            assert ours == theirs
            assert ours[0] >= 400
        after = await fast_route(fast)
        assert after["fast"] - before.get("fast", 0) == len(SESSION_FAST) + 1
        # initialize, notifications/initialized, the SDK cases and the three refusals
        assert after["sdk"] - before.get("sdk", 0) == 2 + len(SESSION_SDK) + 3


async def test_a_client_that_answers_server_requests_keeps_the_sdk_path(tmp_path: Path) -> None:
    """A session whose client declared sampling may be asked to sample mid-call: only SDK-path requests
    can carry that, so its calls stay there (and still get the right answer)."""
    async with proxies(config(tmp_path / "cancelled")) as (fast, _), httpx2.AsyncClient(timeout=60) as http:
        headers = await open_session(http, fast, capabilities={"sampling": {}})
        before = await fast_route(fast)
        status, reply = await exchange(http, fast, SESSION_FAST[2], headers)
        assert status == 200
        assert reply[-1]["result"]["structuredContent"] == {"result": "hi"}
        after = await fast_route(fast)
        assert after.get("fast", 0) == before.get("fast", 0)
        assert after["sdk"] == before["sdk"] + 1


async def test_session_cancellation_and_disconnect_reach_the_backend(tmp_path: Path) -> None:
    cancel_file = anyio.Path(tmp_path / "cancelled")
    async with proxies(config(tmp_path / "cancelled")) as (fast, _), httpx2.AsyncClient(timeout=60) as http:
        headers = await open_session(http, fast)
        before = (await fast_route(fast)).get("fast", 0)
        slow = call("tools/call", {"name": "slow", "arguments": {"seconds": 30}}, request_id=7)
        pending = asyncio.create_task(http.post(f"{fast}/mcp", content=json.dumps(slow), headers=headers))
        with anyio.fail_after(30):
            while (await fast_route(fast)).get("fast", 0) < before + 1:  # noqa: ASYNC110 (polls /metrics)
                await anyio.sleep(0.02)
        await anyio.sleep(0.2)  # the frame is on its way to the backend
        cancelled = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7}}
        notified = await http.post(f"{fast}/mcp", content=json.dumps(cancelled), headers=headers)
        assert notified.status_code == 202
        answer = await asyncio.wait_for(pending, 30)
        # As on the SDK path: the request's stream ends without an answer.
        assert answer.status_code == 200
        assert messages(answer) == []
        with anyio.fail_after(30):
            while not await cancel_file.exists():  # noqa: ASYNC110 (the backend writes it)
                await anyio.sleep(0.05)
        await cancel_file.unlink()

        # A client that goes away mid-call cancels it too.
        async with httpx2.AsyncClient(timeout=httpx2.Timeout(60, read=1.0)) as impatient:
            with pytest.raises(httpx2.ReadTimeout):
                await impatient.post(f"{fast}/mcp", content=json.dumps(slow), headers=headers)
        with anyio.fail_after(30):
            while not await cancel_file.exists():  # noqa: ASYNC110 (the backend writes it)
                await anyio.sleep(0.05)

        # The session and the shared backend session still serve.
        status, reply = await exchange(http, fast, SESSION_FAST[2], headers)
        assert (status, reply[0]["result"]["structuredContent"]) == (200, {"result": "hi"})


async def test_a_slow_session_answer_streams_keep_alives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gateway.fastpath, "PING_SECONDS", 0.2)
    async with proxies(config(tmp_path / "cancelled")) as (fast, _), httpx2.AsyncClient(timeout=60) as http:
        headers = await open_session(http, fast)
        slow = call("tools/call", {"name": "slow", "arguments": {"seconds": 1.0}})
        response = await http.post(f"{fast}/mcp", content=json.dumps(slow), headers=headers)
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["mcp-session-id"] == headers["mcp-session-id"]
        assert response.text.count(": ping") >= 2
        (reply,) = messages(response)
        assert reply["result"]["structuredContent"] == {"result": "slept 1.0"}
