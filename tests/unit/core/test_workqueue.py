"""The work queue keeps client-go's promises; a ManualClock makes minutes of backoff take microseconds."""

from __future__ import annotations

import asyncio

import pytest

from controller.core.clock import ManualClock
from controller.core.metrics import Metrics
from controller.core.ratelimit import DefaultControllerRateLimiter, ItemExponentialBackoff, TokenBucket
from controller.core.workqueue import LOW_PRIORITY, ShutDownError, WorkQueue


def make_queue(clock: ManualClock) -> WorkQueue[str]:
    return WorkQueue(
        "test", clock=clock, rate_limiter=DefaultControllerRateLimiter(clock=clock), metrics=Metrics()
    )


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_repeated_adds_collapse_into_one_reconcile() -> None:
    queue = make_queue(ManualClock())
    for _ in range(3):
        queue.add("a")
    queue.add("b")
    assert len(queue) == 2
    assert [await queue.get(), await queue.get()] == ["a", "b"]
    assert len(queue) == 0


async def test_a_key_is_never_handed_out_twice_at_once() -> None:
    queue = make_queue(ManualClock())
    queue.add("a")
    assert await queue.get() == "a"
    queue.add("a")  # edited while being reconciled
    assert len(queue) == 0, "a processing key must not be ready a second time"
    second = asyncio.create_task(queue.get())
    await settle()
    assert not second.done()
    queue.done("a")
    assert await asyncio.wait_for(second, 1) == "a", "the add during processing must run after done"
    queue.done("a")
    assert len(queue) == 0 and queue.processing() == frozenset()


async def test_backoff_sequence_is_5ms_doubling_capped_at_1000s() -> None:
    backoff = ItemExponentialBackoff()
    delays = [backoff.when("k") for _ in range(21)]
    assert delays[:5] == pytest.approx([0.005, 0.01, 0.02, 0.04, 0.08])
    assert delays[17] == pytest.approx(655.36)
    assert delays[18:] == [1000.0, 1000.0, 1000.0]
    assert backoff.num_requeues("k") == 21
    backoff.forget("k")
    assert backoff.when("k") == pytest.approx(0.005)


async def test_rate_limited_key_becomes_ready_only_after_its_backoff() -> None:
    clock = ManualClock()
    queue = make_queue(clock)
    queue.add_rate_limited("k")
    queue.add_rate_limited("k")  # second failure: 10 ms, but the earlier 5 ms ready time wins
    getter = asyncio.create_task(queue.get())
    await clock.advance(0.004)
    assert not getter.done()
    await clock.advance(0.001)
    assert await asyncio.wait_for(getter, 1) == "k"
    assert queue.num_requeues("k") == 2
    queue.forget("k")
    assert queue.num_requeues("k") == 0


async def test_retry_bucket_limits_retries_to_10_per_second_after_a_burst_of_100() -> None:
    clock = ManualClock()
    limiter = DefaultControllerRateLimiter(clock=clock)
    first = [limiter.when(f"key-{i}") for i in range(100)]
    assert first == [pytest.approx(0.005)] * 100, "the burst of 100 retries is not throttled"
    assert limiter.when("key-100") == pytest.approx(0.1)
    assert limiter.when("key-101") == pytest.approx(0.2)
    await clock.advance(10)  # the bucket refills at 10 qps
    assert limiter.when("key-102") == pytest.approx(0.005)


async def test_fresh_adds_are_not_rate_limited() -> None:
    queue = make_queue(ManualClock())
    for i in range(500):
        queue.add(f"k{i}")
    assert len(queue) == 500  # all ready at once: the bucket applies to retries only


def test_token_bucket_reserves_ahead_so_waiters_queue_fairly() -> None:
    clock = ManualClock()
    bucket = TokenBucket(qps=20, burst=30, clock=clock)
    assert [bucket.reserve() for _ in range(30)] == [0.0] * 30
    assert [bucket.reserve() for _ in range(3)] == pytest.approx([0.05, 0.1, 0.15])


async def test_earliest_ready_time_wins() -> None:
    clock = ManualClock()
    queue = make_queue(clock)
    queue.add_after("late-then-early", 10)
    queue.add_after("late-then-early", 2)
    queue.add_after("early-then-late", 1)
    queue.add_after("early-then-late", 5)
    assert queue.waiting() == 2
    await clock.advance(1)
    assert await asyncio.wait_for(queue.get(), 1) == "early-then-late"
    await clock.advance(1)
    assert await asyncio.wait_for(queue.get(), 1) == "late-then-early"
    queue.done("early-then-late")
    queue.done("late-then-early")
    await clock.advance(10)
    assert len(queue) == 0, "superseded later ready times must not fire again"


async def test_immediate_add_overrides_a_pending_delay() -> None:
    clock = ManualClock()
    queue = make_queue(clock)
    queue.add_after("k", 60)
    queue.add("k")
    assert await asyncio.wait_for(queue.get(), 1) == "k"
    queue.done("k")
    await clock.advance(61)
    assert len(queue) == 0


async def test_real_edits_overtake_low_priority_startup_adds() -> None:
    queue = make_queue(ManualClock())
    for name in ("init-1", "init-2", "init-3"):
        queue.add(name, LOW_PRIORITY)
    queue.add("edited")
    queue.add("init-3")  # a real edit of an object still waiting from the initial list: promoted
    order = [await queue.get() for _ in range(4)]
    assert order == ["edited", "init-3", "init-1", "init-2"]


async def test_shutdown_with_drain_waits_for_in_flight_work_and_refuses_new() -> None:
    queue = make_queue(ManualClock())
    queue.add("busy")
    queue.add("queued")
    assert await queue.get() == "busy"
    drain = asyncio.create_task(queue.shutdown_with_drain(5))
    await settle()
    assert not drain.done(), "drain must wait for the in-flight key"
    with pytest.raises(ShutDownError):
        await queue.get()
    queue.add("after-shutdown")
    queue.done("busy")
    assert await asyncio.wait_for(drain, 1) is True
    assert len(queue) == 1, "only the key queued before shutdown is left; later adds were refused"


async def test_shutdown_wakes_blocked_getters() -> None:
    queue = make_queue(ManualClock())
    getters = [asyncio.create_task(queue.get()) for _ in range(3)]
    await settle()
    queue.shutdown()
    for getter in getters:
        with pytest.raises(ShutDownError):
            await asyncio.wait_for(getter, 1)


async def test_metrics_report_depth_adds_and_retries() -> None:
    metrics = Metrics()
    clock = ManualClock()
    queue: WorkQueue[str] = WorkQueue("widgets", clock=clock, metrics=metrics)
    queue.add("a")
    queue.add("a")
    queue.add("b")
    queue.add_rate_limited("c")
    value = metrics.registry.get_sample_value
    labels = {"name": "widgets", "controller": "widgets"}
    assert value("workqueue_depth", labels) == 2
    assert value("workqueue_adds_total", labels) == 2
    assert value("workqueue_retries_total", labels) == 1
    await queue.get()
    await clock.advance(3)
    assert value("workqueue_longest_running_processor_seconds", labels) == pytest.approx(3)
