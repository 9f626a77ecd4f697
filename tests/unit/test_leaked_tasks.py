"""The leaked-task check of tests/conftest.py: what counts as a task left behind, and how it is reported."""

from __future__ import annotations

import asyncio

from tests.support import tasks


async def test_a_task_still_running_after_the_test_is_reported_with_its_coroutine() -> None:
    before = asyncio.all_tasks()
    forever = asyncio.Event()
    left = asyncio.create_task(forever.wait(), name="left-behind")
    done = asyncio.create_task(asyncio.sleep(0), name="finishes")
    ending = asyncio.create_task(asyncio.sleep(0.05), name="ends-within-the-grace")
    try:
        leaked = await tasks.leftover(before)
        assert leaked == [left]
        assert done.done() and ending.done()
        assert tasks.describe(left).startswith("left-behind: 'Event.wait'")
    finally:
        await tasks.cancel([left])
    assert left.cancelled()


async def test_tasks_that_were_there_before_are_not_the_tests() -> None:
    earlier = asyncio.create_task(asyncio.Event().wait(), name="earlier")
    try:
        assert await tasks.leftover(asyncio.all_tasks()) == []
    finally:
        await tasks.cancel([earlier])
