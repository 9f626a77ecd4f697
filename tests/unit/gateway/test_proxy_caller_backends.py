"""Per-caller backend sessions (``gateway.backends.callers``): one per identity, newest token, evicted."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from gateway.backends.callers import Caller, CallerBackends, SubjectToken
from gateway.backends.connection import BackendConnection, Streams, running


class Recorder:
    """Makes backend connections whose transport never connects; records the subjects they were given."""

    def __init__(self) -> None:
        self.subjects: list[SubjectToken] = []
        self.closed = 0
        self.first_closed = anyio.Event()

    def make(self, subject: SubjectToken) -> BackendConnection:
        self.subjects.append(subject)

        @contextlib.asynccontextmanager
        async def never_connects() -> AsyncIterator[Streams]:
            try:
                await anyio.sleep_forever()
                yield None, None  # pragma: no cover (never reached)
            finally:
                self.closed += 1
                self.first_closed.set()

        return BackendConnection(never_connects, description="fake", connect_timeout=0.05)


async def _forward(pool: CallerBackends, caller: Caller | None) -> Any:
    with pytest.raises(MCPError) as caught:
        await pool.connection(caller).forward("ping")
    return caught.value


async def test_one_session_per_identity_with_the_newest_token() -> None:
    recorder = Recorder()
    pool = CallerBackends(recorder.make)
    async with running(pool):
        await _forward(pool, Caller("alice", "token-a1"))
        await _forward(pool, Caller("bob", "token-b1"))
        await _forward(pool, Caller("alice", "token-a2"))
        assert [s.get() for s in recorder.subjects] == ["token-a2", "token-b1"]
        assert pool.readiness() == (True, "per-caller backend sessions: 0 up of 2")
    assert recorder.closed == 2, "the pool left a caller's connection running"


async def test_unauthenticated_requests_are_refused() -> None:
    pool = CallerBackends(Recorder().make)
    async with running(pool):
        error = await _forward(pool, None)
        assert error.code == types.INVALID_REQUEST and "oidc" in error.error.message


async def test_least_recently_used_caller_is_evicted_at_the_limit() -> None:
    recorder = Recorder()
    pool = CallerBackends(recorder.make, max_callers=2)
    async with running(pool):
        for who in ("alice", "bob", "alice", "carol"):
            await _forward(pool, Caller(who, f"token-{who}"))
        await anyio.sleep(0.05)
        assert recorder.closed == 1  # bob's
        assert sorted(pool._entries) == ["alice", "carol"]


async def test_idle_sessions_are_closed() -> None:
    recorder = Recorder()
    pool = CallerBackends(recorder.make, idle_seconds=0.2)
    async with running(pool):
        await _forward(pool, Caller("alice", "t"))
        with anyio.fail_after(5):
            await recorder.first_closed.wait()
        assert pool.readiness() == (True, "per-caller backend sessions: 0 up of 0")


def test_not_ready_before_it_runs() -> None:
    assert CallerBackends(Recorder().make).readiness()[0] is False
