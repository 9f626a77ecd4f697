"""A work queue with client-go semantics (dirty + processing sets, delays, per-key backoff, priorities).

- a key is never handed to two workers at once; repeated adds before processing collapse into one;
- ``add_after`` keeps the earliest ready time of a waiting key; an immediate add makes it ready now;
- ``add_rate_limited`` = ``add_after(key, limiter.when(key))`` (5 ms x 2^n capped at 1000 s, and a
  10 qps / burst 100 bucket on retries only); ``forget`` resets the key's backoff;
- within the ready set higher priority goes first, FIFO within a priority (controller-runtime adds the
  initial list and resyncs at :data:`LOW_PRIORITY` so real edits overtake a startup storm).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Hashable
from typing import Generic, TypeVar

from controller.core.clock import Clock, MonotonicClock
from controller.core.metrics import Metrics
from controller.core.ratelimit import DefaultControllerRateLimiter

K = TypeVar("K", bound=Hashable)

LOW_PRIORITY = -100
"""controller-runtime's priority for initial-list and resync adds."""
MAX_WAIT = 10.0
"""The longest a getter sleeps without re-checking delayed keys (client-go's ``maxWait``)."""


class ShutDownError(Exception):
    """Raised by :meth:`WorkQueue.get` once the queue is shutting down."""


class WorkQueue(Generic[K]):
    """A deduplicating, delaying, rate-limited priority queue for reconcile keys."""

    def __init__(
        self,
        name: str = "",
        *,
        clock: Clock | None = None,
        rate_limiter: DefaultControllerRateLimiter | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.name = name
        self._clock = clock or MonotonicClock()
        self._limiter = rate_limiter or DefaultControllerRateLimiter(clock=self._clock)
        self._seq = itertools.count()
        self._ready: list[tuple[int, int, K]] = []  # (-priority, seq, key); stale entries skipped
        self._ready_entry: dict[K, tuple[int, int]] = {}  # key -> its live (-priority, seq)
        self._dirty: dict[K, int] = {}  # key -> priority; dirty keys are ready or processing
        self._added_at: dict[K, float] = {}
        self._processing: dict[K, float] = {}  # key -> start time
        self._waiting: dict[K, tuple[float, int]] = {}  # key -> (ready time, priority)
        self._waiting_heap: list[tuple[float, int, K]] = []
        self._shutting_down = False
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._metrics = metrics
        if metrics is not None:
            labels = {"name": name, "controller": name}
            self._depth = metrics.workqueue_depth.labels(**labels)
            self._adds = metrics.workqueue_adds_total.labels(**labels)
            self._queue_duration = metrics.workqueue_queue_duration_seconds.labels(**labels)
            self._work_duration = metrics.workqueue_work_duration_seconds.labels(**labels)
            self._retries = metrics.workqueue_retries_total.labels(**labels)
            metrics.workqueue_unfinished_work_seconds.labels(**labels).set_function(self.unfinished_work)
            metrics.workqueue_longest_running_processor_seconds.labels(**labels).set_function(
                self.longest_running
            )

    # ------------------------------------------------------------------------------------ adding

    def add(self, key: K, priority: int = 0) -> None:
        """Make ``key`` ready now (deduplicated; deferred while it is being processed)."""
        if self._shutting_down:
            return
        waiting = self._waiting.pop(key, None)
        if waiting is not None:
            priority = max(priority, waiting[1])
        if key in self._dirty:
            if priority > self._dirty[key]:
                self._dirty[key] = priority
                if key in self._ready_entry:
                    self._push_ready(key, priority)
            return
        self._dirty[key] = priority
        self._added_at[key] = self._clock.now()
        if self._metrics is not None:
            self._adds.inc()
        if key in self._processing:
            return
        self._push_ready(key, priority)

    def add_after(self, key: K, delay: float, priority: int = 0) -> None:
        """Make ``key`` ready after ``delay`` seconds; a waiting key keeps its earlier ready time."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key, priority)
            return
        if key in self._dirty:
            if key in self._ready_entry and priority > self._dirty[key]:
                self.add(key, priority)
            return
        ready_at = self._clock.now() + delay
        current = self._waiting.get(key)
        if current is not None:
            if current[0] <= ready_at:
                self._waiting[key] = (current[0], max(current[1], priority))
                return
            priority = max(priority, current[1])
        self._waiting[key] = (ready_at, priority)
        heapq.heappush(self._waiting_heap, (ready_at, next(self._seq), key))
        self._wake.set()

    def add_rate_limited(self, key: K, priority: int = 0) -> None:
        """Re-add a failed key after its backoff (also bounded by the shared retry bucket)."""
        if self._shutting_down:
            return
        if self._metrics is not None:
            self._retries.inc()
        self.add_after(key, self._limiter.when(key), priority)

    def forget(self, key: K) -> None:
        """The key succeeded: reset its backoff."""
        self._limiter.forget(key)

    def num_requeues(self, key: K) -> int:
        return self._limiter.num_requeues(key)

    # ----------------------------------------------------------------------------------- getting

    async def get(self) -> K:
        """Wait for the next ready key and mark it processing; raises :class:`ShutDownError`."""
        while True:
            if self._shutting_down:
                raise ShutDownError
            self._promote_due()
            key = self._pop_ready()
            if key is not None:
                now = self._clock.now()
                self._processing[key] = now
                self._idle.clear()
                self._dirty.pop(key, None)
                added = self._added_at.pop(key, now)
                if self._metrics is not None:
                    self._queue_duration.observe(max(0.0, now - added))
                    self._depth.set(len(self._ready_entry))
                return key
            await self._wait_for_work()

    def done(self, key: K) -> None:
        """Processing of ``key`` finished; if it was re-added meanwhile it becomes ready again."""
        started = self._processing.pop(key, None)
        if started is not None and self._metrics is not None:
            self._work_duration.observe(max(0.0, self._clock.now() - started))
        if key in self._dirty and not self._shutting_down:
            self._push_ready(key, self._dirty[key])
        if not self._processing:
            self._idle.set()

    # ---------------------------------------------------------------------------------- shutdown

    def shutdown(self) -> None:
        """Stop handing out keys and accepting adds; wake every getter."""
        self._shutting_down = True
        self._wake.set()

    async def shutdown_with_drain(self, within: float | None = None) -> bool:
        """Shut down, then wait until no key is being processed; False if ``within`` seconds passed first."""
        self.shutdown()
        try:
            await asyncio.wait_for(self._idle.wait(), within)
        except TimeoutError:
            return False
        return True

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    # --------------------------------------------------------------------------------- inspection

    def __len__(self) -> int:
        """Ready keys (the ``workqueue_depth``), not counting waiting or processing ones."""
        return len(self._ready_entry)

    def waiting(self) -> int:
        return len(self._waiting)

    def processing(self) -> frozenset[K]:
        return frozenset(self._processing)

    def unfinished_work(self) -> float:
        now = self._clock.now()
        return sum(now - start for start in self._processing.values())

    def longest_running(self) -> float:
        now = self._clock.now()
        return max((now - start for start in self._processing.values()), default=0.0)

    # ---------------------------------------------------------------------------------- internals

    def _push_ready(self, key: K, priority: int) -> None:
        entry = (-priority, next(self._seq))
        self._ready_entry[key] = entry
        heapq.heappush(self._ready, (*entry, key))
        if self._metrics is not None:
            self._depth.set(len(self._ready_entry))
        self._wake.set()

    def _pop_ready(self) -> K | None:
        while self._ready:
            neg_priority, seq, key = heapq.heappop(self._ready)
            if self._ready_entry.get(key) == (neg_priority, seq):
                del self._ready_entry[key]
                return key
        return None

    def _promote_due(self) -> None:
        now = self._clock.now()
        while self._waiting_heap and self._waiting_heap[0][0] <= now:
            ready_at, _, key = heapq.heappop(self._waiting_heap)
            current = self._waiting.get(key)
            if current is None or current[0] != ready_at:
                continue  # superseded by an earlier time or an immediate add
            self.add(key, current[1])

    def _next_due_in(self) -> float | None:
        while self._waiting_heap:
            ready_at, _, key = self._waiting_heap[0]
            current = self._waiting.get(key)
            if current is not None and current[0] == ready_at:
                return max(0.0, ready_at - self._clock.now())
            heapq.heappop(self._waiting_heap)
        return None

    async def _wait_for_work(self) -> None:
        self._wake.clear()
        due = self._next_due_in()
        timeout = MAX_WAIT if due is None else min(due, MAX_WAIT)
        waker = asyncio.ensure_future(self._wake.wait())
        sleeper = asyncio.ensure_future(self._clock.sleep(timeout))
        try:
            await asyncio.wait({waker, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waker.cancel()
            sleeper.cancel()
