"""Hostile and careless clients against a real ``mcp-operator proxy`` process (fixture server over stdio).

One proxy serves the module. Each test sends a bounded number of fuzzed inputs (hundreds), each with a
timeout, then checks that the process is alive, that a real MCP client still gets correct answers, and
that resident memory did not grow beyond ``fuzzutil.RSS_GROWTH_FACTOR`` times what it was after warm-up.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.dataplane import fuzzutil as fz
from tests.dataplane.proxyutil import FIXTURE_CMD

pytestmark = pytest.mark.slow

MAX_BODY = 64 * 1024
TIMEOUT = httpx2.Timeout(20.0)


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[fz.Served]:
    tmp = tmp_path_factory.mktemp("fuzz-proxy")
    config = {
        "name": "fuzz-proxy",
        "backend": {"type": "stdio", "command": FIXTURE_CMD},
        "limits": {"maxBodyBytes": MAX_BODY, "callTimeoutSeconds": 30},
    }
    with fz.run_entrypoint("proxy", config, tmp) as served:
        yield served


async def assert_serves_correctly(served: fz.Served) -> None:
    await fz.assert_serves_correctly(served, "add", {"a": 20, "b": 22}, {"result": 42})


async def warm_rss(served: fz.Served) -> int:
    await assert_serves_correctly(served)
    return served.rss_kib()


async def test_fuzzed_json_rpc_frames_get_answers_never_a_crash(proxy: fz.Served) -> None:
    before = await warm_rss(proxy)
    with httpx2.Client(timeout=TIMEOUT) as http:
        statuses = fz.post_fuzzed_frames(http, proxy.base, 150)
    assert len(statuses) > 1, f"every frame got the same answer {statuses}: the fuzzer reaches nothing"
    proxy.assert_alive()
    await assert_serves_correctly(proxy)
    fz.assert_rss_bounded(proxy, before)


async def test_fuzzed_frames_on_a_legacy_sse_session(proxy: fz.Served) -> None:
    bodies = fz.draw(fz.bodies, 100)
    with httpx2.Client(timeout=TIMEOUT) as http, http.stream("GET", f"{proxy.base}/sse") as stream:
        lines = stream.iter_lines()
        endpoint = next(line for line in lines if line.startswith("data:"))[len("data:") :].strip()
        for body in bodies:
            response = http.post(f"{proxy.base}{endpoint}", content=body, headers=fz.ACCEPT)
            assert response.status_code in (202, 400, 413), (body[:200], response.status_code, response.text)
    proxy.assert_alive()
    await assert_serves_correctly(proxy)


async def test_fuzzed_raw_http_gets_an_answer_or_a_close_never_a_hang(proxy: fz.Served) -> None:
    before = await warm_rss(proxy)
    assert fz.assert_raw_requests_answered(proxy.port, 150) > 0
    proxy.assert_alive()
    await assert_serves_correctly(proxy)
    fz.assert_rss_bounded(proxy, before)


async def test_oversized_bodies_are_413_whatever_their_framing(proxy: fz.Served) -> None:
    head = fz.post_head(proxy.port)
    # Declared too large: refused from the header, before the body arrives (only 1 KiB of it is sent).
    declared = fz.raw_exchange(proxy.port, head + b"Content-Length: 104857600\r\n\r\n" + b"x" * 1024)
    assert fz.status_of(declared) == 413, declared[:200]
    # Chunked with no length: refused once the stream passes the limit.
    chunked = fz.chunked_past(head, MAX_BODY, 16384)
    assert fz.status_of(fz.raw_exchange(proxy.port, chunked)) == 413
    with httpx2.Client(timeout=TIMEOUT) as http, http.stream("GET", f"{proxy.base}/sse") as stream:
        endpoint = next(line for line in stream.iter_lines() if line.startswith("data:"))[5:].strip()
        big = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"p": "x" * MAX_BODY}})
        assert http.post(f"{proxy.base}{endpoint}", content=big, headers=fz.ACCEPT).status_code == 413
    proxy.assert_alive()
    await assert_serves_correctly(proxy)


async def test_slow_and_stuck_clients_do_not_hold_up_others(proxy: fz.Served) -> None:
    await fz.assert_slow_clients_hold_up_no_one(
        proxy, lambda: assert_serves_correctly(proxy), trickled=10, unread_streams=10
    )


async def test_ssrf_attempts_through_the_front_reach_only_the_configured_backend(proxy: fz.Served) -> None:
    with fz.Canary() as canary:
        target = f"127.0.0.1:{canary.port}"
        attempts = [
            f"POST http://{target}/mcp HTTP/1.1\r\nHost: {target}\r\n",  # absolute-form request target
            f"POST /mcp HTTP/1.1\r\nHost: {target}\r\n",
            f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{proxy.port}\r\nX-Forwarded-Host: {target}\r\n"
            f"Forwarded: host={target}\r\nX-Original-URL: http://{target}/\r\n",
            f"POST //{target}/mcp HTTP/1.1\r\nHost: 127.0.0.1:{proxy.port}\r\n",
            f"POST /messages/?session_id=http://{target}/ HTTP/1.1\r\nHost: 127.0.0.1:{proxy.port}\r\n",
            f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n",
        ]
        frame = json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"uri": f"http://{target}/x"}}
        ).encode()
        for head in attempts:
            request = head.encode() + b"Content-Type: application/json\r\n"
            request += b"Accept: application/json, text/event-stream\r\nMcp-Protocol-Version: 2026-07-28\r\n"
            request += b"Content-Length: %d\r\n\r\n%s" % (len(frame), frame)
            answer = fz.raw_exchange(proxy.port, request)
            assert fz.status_of(answer) in (None, 200, 400, 404, 405, 421), answer[:300]
        with httpx2.Client(timeout=TIMEOUT) as http:  # a redirect to the canary is not followed upstream
            http.post(
                f"{proxy.base}/mcp",
                json={
                    "jsonrpc": "2.0",
                    "id": 2,
                    "method": "tools/call",
                    "params": {"name": "echo", "arguments": {"text": f"http://{target}/"}},
                },
                headers={**fz.ACCEPT, "mcp-protocol-version": "2026-07-28"},
            )
        # Each attempt was answered (or closed) before the next: a request it caused would be here by now.
        assert canary.hits == [], canary.hits
    proxy.assert_alive()


def test_the_log_has_no_unhandled_exception(proxy: fz.Served) -> None:
    """Last in the module: nothing above escaped a handler (the SDK logs refused frames and client
    disconnects with their tracebacks; those were answered and are not crashes)."""
    log = Path(proxy.log).read_text(encoding="utf-8", errors="replace")
    for marker in ("Exception in ASGI application", "Task exception was never retrieved", "Fatal error"):
        assert marker not in log, log[log.index(marker) : log.index(marker) + 3000]
