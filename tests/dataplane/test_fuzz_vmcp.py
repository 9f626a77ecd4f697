"""Hostile and careless clients against a real ``mcp-operator vmcp`` gateway (one fixture backend).

The same bounded inputs as ``test_fuzz_proxy`` (drawn by ``fuzzutil``), sent to the gateway, whose
front fans requests out to its backends: no 5xx, no hang, bounded memory, 413 for oversized bodies, slow
clients do not hold up others, and the gateway still routes ``fix_add`` correctly afterwards. The
``/status`` endpoint (JSON health) is fuzzed too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx2
import pytest

from tests.dataplane import fuzzutil as fz
from tests.support.gateway_processes import fixture_server, free_port

pytestmark = pytest.mark.slow

MAX_BODY = 4 * 1024 * 1024  # the gateway front's default limit
TIMEOUT = httpx2.Timeout(20.0)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[fz.Served]:
    tmp = tmp_path_factory.mktemp("fuzz-vmcp")
    port = free_port()
    backend = fixture_server("fix", port, tmp)
    try:
        config = {
            "name": "fuzz-gateway",
            "backends": [
                {"name": "fix", "url": f"http://127.0.0.1:{port}/mcp", "transport": "streamable-http"}
            ],
        }
        with fz.run_entrypoint("vmcp", config, tmp) as served:
            yield served
    finally:
        backend.stop()


async def assert_routes_correctly(gateway: fz.Served) -> None:
    await fz.assert_serves_correctly(gateway, "fix_add", {"a": 40, "b": 2}, {"result": 42})


async def test_fuzzed_json_rpc_frames_get_answers_never_a_crash(gateway: fz.Served) -> None:
    await fz.eventually_serves(lambda: assert_routes_correctly(gateway))
    before = gateway.rss_kib()
    bodies = fz.draw(fz.bodies, 120)
    headers = fz.draw(fz.header_sets, 120)
    with httpx2.Client(timeout=TIMEOUT) as http:
        session = fz.initialize_session(http, gateway.base)
        in_session = {**fz.ACCEPT, "mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}
        for i, body in enumerate(bodies):
            sent = {**fz.ACCEPT, **headers[i]} if i % 2 else in_session
            response = http.post(f"{gateway.base}/mcp", content=body, headers=sent)
            assert response.status_code < 500, (body[:200], sent, response.status_code, response.text[:300])
        ping = http.post(
            f"{gateway.base}/mcp", json={"jsonrpc": "2.0", "id": "p", "method": "ping"}, headers=in_session
        )
        assert ping.status_code == 200 and '"result"' in ping.text, ping.text
    gateway.assert_alive()
    await assert_routes_correctly(gateway)
    fz.assert_rss_bounded(gateway, before)


async def test_fuzzed_raw_http_and_status_requests_never_hang(gateway: fz.Served) -> None:
    before = gateway.rss_kib()
    for data in fz.draw(fz.raw_requests, 100):
        answer = fz.raw_exchange(gateway.port, data)
        status = fz.status_of(answer)
        assert status is None or status < 500, (data[:200], answer[:300])
    host = f"Host: 127.0.0.1:{gateway.port}\r\n".encode()
    for query in ("", "?x=1", "?backend=../../etc", "?" + "a" * 8000):
        answer = fz.raw_exchange(gateway.port, f"GET /status{query} HTTP/1.1\r\n".encode() + host + b"\r\n")
        assert fz.status_of(answer) in (200, 400, 414, 431), answer[:300]
    gateway.assert_alive()
    await assert_routes_correctly(gateway)
    fz.assert_rss_bounded(gateway, before)


async def test_oversized_bodies_are_413(gateway: fz.Served) -> None:
    host = f"Host: 127.0.0.1:{gateway.port}\r\n".encode()
    head = b"POST /mcp HTTP/1.1\r\n" + host + b"Accept: application/json, text/event-stream\r\n"
    head += b"Content-Type: application/json\r\n"
    declared = fz.raw_exchange(
        gateway.port, head + b"Content-Length: %d\r\n\r\n" % (MAX_BODY * 10) + b"{" * 1024
    )
    assert fz.status_of(declared) == 413, declared[:200]
    chunk = b"x" * (256 * 1024)
    chunked = head + b"Transfer-Encoding: chunked\r\n\r\n"
    chunked += b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(MAX_BODY // len(chunk) + 2))
    assert fz.status_of(fz.raw_exchange(gateway.port, chunked + b"0\r\n\r\n")) == 413
    gateway.assert_alive()
    await assert_routes_correctly(gateway)


async def test_slow_and_stuck_clients_do_not_hold_up_others(gateway: fz.Served) -> None:
    host = f"Host: 127.0.0.1:{gateway.port}\r\n".encode()
    slow = fz.SlowClients(gateway.port)
    try:
        for _ in range(5):
            sock = slow.open(
                b"POST /mcp HTTP/1.1\r\n" + host + b"Content-Type: application/json\r\n"
                b"Accept: application/json, text/event-stream\r\nContent-Length: 4000\r\n\r\n"
            )
            slow.start_trickle(sock, 4000)
        for _ in range(20):
            slow.open(b"POST /mcp HTTP/1.1\r\n" + host + b"X-Slow: ")
        for _ in range(5):
            slow.open(b"GET /sse HTTP/1.1\r\n" + host + b"Accept: text/event-stream\r\n\r\n")
        frame = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
        pipelined = (
            b"POST /mcp HTTP/1.1\r\n" + host + b"Content-Type: application/json\r\n"
            b"Accept: application/json, text/event-stream\r\nMcp-Protocol-Version: 2026-07-28\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(frame), frame)
        )
        for _ in range(5):
            slow.open(pipelined * 50)
        started = slow.trickled
        for _ in range(3):
            await assert_routes_correctly(gateway)
        assert slow.trickled > started, "the slow clients were not running meanwhile"
        gateway.assert_alive()
    finally:
        slow.close()
    await assert_routes_correctly(gateway)


def test_the_log_has_no_unhandled_exception(gateway: fz.Served) -> None:
    log = gateway.log.read_text(encoding="utf-8", errors="replace")
    for marker in ("Exception in ASGI application", "Task exception was never retrieved", "Fatal error"):
        assert marker not in log, log[log.index(marker) : log.index(marker) + 3000]
