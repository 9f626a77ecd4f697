"""The session-era fast path's pure pieces: which POSTs it may take, and the idle bookkeeping it keeps."""

from __future__ import annotations

import math
from typing import Any

import anyio
import pytest
from mcp.server.lowlevel import Server
from mcp.server.streamable_http import StreamableHTTPServerTransport
from prometheus_client import CollectorRegistry

from gateway.fastpath import _MODERN, FastPath
from gateway.sdk_private import SessionLease

SESSION = [
    (b"accept", b"application/json, text/event-stream"),
    (b"content-type", b"application/json"),
    (b"mcp-session-id", b"abc123"),
    (b"mcp-protocol-version", b"2025-11-25"),
]


class _NoHandler:
    def can_serve(self, method: str, params: Any) -> bool:
        return False

    async def serve(self, method: str, params: Any, scope: Any, notify: Any = None) -> dict[str, Any]:
        raise AssertionError("not called")


async def _fallback(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("not called")


def candidate(headers: list[tuple[bytes, bytes]]) -> str | None:
    fast = FastPath(_fallback, _NoHandler(), Server("t"), max_body_bytes=1000, registry=CollectorRegistry())
    return fast._candidate({"type": "http", "method": "POST", "headers": headers})


def without(name: bytes) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in SESSION if k != name]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (SESSION, "abc123"),
        (without(b"mcp-protocol-version"), "abc123"),  # the SDK assumes its default version
        ([*without(b"content-type"), (b"content-type", b"application/json; charset=utf-8")], "abc123"),
        (without(b"content-type"), None),  # the SDK answers 415
        ([*without(b"content-type"), (b"content-type", b"text/plain")], None),
        ([*without(b"accept"), (b"accept", b"application/json")], None),  # the SDK answers 406
        ([*SESSION, (b"mcp-session-id", b"other")], None),  # duplicated
        ([*without(b"mcp-protocol-version"), (b"mcp-protocol-version", b"2026-07-28")], None),
        ([*SESSION, (b"content-length", b"1001")], None),  # the SDK answers 413
        ([*SESSION, (b"mcp-protocol-version", b"2025-11-25")], None),  # duplicated version
        ([(b"accept", b"*/*"), (b"mcp-protocol-version", b"2026-07-28")], _MODERN),
        (without(b"mcp-session-id"), None),  # no session yet (initialize): the SDK's
    ],
)
def test_which_posts_are_fast_path_candidates(
    headers: list[tuple[bytes, bytes]], expected: str | None
) -> None:
    assert candidate(headers) == expected


class _Connection:
    protocol_version = "2025-11-25"


async def test_a_leased_session_does_not_idle_out_while_served() -> None:
    """As the SDK's transport does for its own requests: the idle countdown stops while any request is
    in flight and restarts from the end of the last one."""
    transport = StreamableHTTPServerTransport(mcp_session_id="abc123", idle_timeout=30)
    async with transport.connect():
        idle = transport.idle_scope
        assert idle is not None
        first = SessionLease("abc123", transport, _Connection())  # type: ignore[arg-type]
        second = SessionLease("abc123", transport, _Connection())  # type: ignore[arg-type]
        with first:
            assert idle.deadline == math.inf
            with second:
                assert idle.deadline == math.inf
            assert idle.deadline == math.inf  # one still in flight
        assert anyio.current_time() + 29 < idle.deadline <= anyio.current_time() + 30
        assert transport._requests_in_flight == 0
        await transport.terminate()


async def test_a_session_without_idle_timeout_is_left_alone() -> None:
    transport = StreamableHTTPServerTransport(mcp_session_id="abc123")
    async with transport.connect():
        with SessionLease("abc123", transport, _Connection()):  # type: ignore[arg-type]
            assert transport.idle_scope is None
        assert transport._requests_in_flight == 0
        await transport.terminate()
