"""Asyncio tasks a test leaves running: what the leaked-task fixture reports."""

from __future__ import annotations

import asyncio

SETTLE_SECONDS = 2.0
"""How long tasks that are already finishing (a cancellation on its way, a last callback) may take to end
on their own before they count as leaked; the check returns as soon as they have."""


def describe(task: asyncio.Task[object]) -> str:
    """A task's name and the coroutine it runs (where it is suspended), for the failure message."""
    coro = task.get_coro()
    where = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
    location = f" ({where.co_filename}:{where.co_firstlineno})" if where is not None else ""
    return f"{task.get_name()}: {getattr(coro, '__qualname__', coro)!r}{location}"


async def leftover(before: set[asyncio.Task[object]]) -> list[asyncio.Task[object]]:
    """Tasks of the running loop that were not there in ``before`` and have not ended within
    ``SETTLE_SECONDS`` (the caller's own task excepted)."""
    own = asyncio.current_task()
    new = {t for t in asyncio.all_tasks() if t not in before and t is not own and not t.done()}
    if new:
        await asyncio.wait(new, timeout=SETTLE_SECONDS)
    return sorted((t for t in new if not t.done()), key=lambda t: t.get_name())


async def cancel(tasks: list[asyncio.Task[object]]) -> None:
    """Cancel leaked tasks so one leak does not spill into the next test's failures."""
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks, timeout=SETTLE_SECONDS)
