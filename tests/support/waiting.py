"""Waiting for conditions (never for a fixed time)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def eventually(
    check: Callable[[], Awaitable[Any]], within: float = 30.0, what: str = "condition"
) -> Any:
    """Poll ``check`` until it returns a truthy value; fail with ``what`` after ``within`` seconds."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = await check()
        except (AssertionError, KeyError, TypeError) as exc:
            last = exc
        else:
            if last:
                return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {within} s waiting for {what}; last: {last!r}")


async def until(
    check: Callable[[], bool | Awaitable[bool]], within: float, what: str, *, interval: float = 0.2
) -> float:
    """Poll ``check`` (plain or async) every ``interval`` seconds until it is true; the seconds it took.
    Fails naming ``what`` after ``within`` seconds."""
    started = time.monotonic()
    while True:
        done = check()
        if inspect.isawaitable(done):
            done = await done
        if done:
            return time.monotonic() - started
        if time.monotonic() - started > within:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(interval)
