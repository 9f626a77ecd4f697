"""Hostile and careless clients against a real ``mcp-operator vmcp`` gateway (one fixture backend).

The same bounded inputs as ``test_fuzz_proxy`` (drawn by ``fuzzutil``), sent to the gateway, whose
front fans requests out to its backends: no 5xx, no hang, bounded memory, 413 for oversized bodies, slow
clients do not hold up others, and the gateway still routes ``fix_add`` correctly afterwards. The
``/status`` endpoint (JSON health) is fuzzed too.
"""

from __future__ import annotations

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
    with httpx2.Client(timeout=TIMEOUT) as http:
        fz.post_fuzzed_frames(http, gateway.base, 120)
    gateway.assert_alive()
    await assert_routes_correctly(gateway)
    fz.assert_rss_bounded(gateway, before)


async def test_fuzzed_raw_http_and_status_requests_never_hang(gateway: fz.Served) -> None:
    before = gateway.rss_kib()
    fz.assert_raw_requests_answered(gateway.port, 100)
    host = f"Host: 127.0.0.1:{gateway.port}\r\n".encode()
    for query in ("", "?x=1", "?backend=../../etc", "?" + "a" * 8000):
        answer = fz.raw_exchange(gateway.port, f"GET /status{query} HTTP/1.1\r\n".encode() + host + b"\r\n")
        assert fz.status_of(answer) in (200, 400, 414, 431), answer[:300]
    gateway.assert_alive()
    await assert_routes_correctly(gateway)
    fz.assert_rss_bounded(gateway, before)


async def test_oversized_bodies_are_413(gateway: fz.Served) -> None:
    head = fz.post_head(gateway.port)
    declared = fz.raw_exchange(
        gateway.port, head + b"Content-Length: %d\r\n\r\n" % (MAX_BODY * 10) + b"{" * 1024
    )
    assert fz.status_of(declared) == 413, declared[:200]
    chunked = fz.chunked_past(head, MAX_BODY, 256 * 1024)
    assert fz.status_of(fz.raw_exchange(gateway.port, chunked)) == 413
    gateway.assert_alive()
    await assert_routes_correctly(gateway)


async def test_slow_and_stuck_clients_do_not_hold_up_others(gateway: fz.Served) -> None:
    await fz.assert_slow_clients_hold_up_no_one(gateway, lambda: assert_routes_correctly(gateway))


def test_the_log_has_no_unhandled_exception(gateway: fz.Served) -> None:
    log = gateway.log.read_text(encoding="utf-8", errors="replace")
    for marker in ("Exception in ASGI application", "Task exception was never retrieved", "Fatal error"):
        assert marker not in log, log[log.index(marker) : log.index(marker) + 3000]
