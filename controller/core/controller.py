"""Controllers: a declaration (what to watch, how to reconcile) and the workers that run it.

The contract is controller-runtime's ``reconcileHandler``: reconcile(key) reads only the cache and
returns done or requeue-after, or raises. Errors back off per key; a :class:`TerminalError` is not
retried until the object changes; any other exception is caught, counted and retried. Each reconcile
runs with a fresh ``reconcile_id`` bound into its structlog context.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
from opentelemetry import trace
from opentelemetry.trace import StatusCode

from controller.core.client import ApiError
from controller.core.objects import controller_of
from controller.core.resources import ObjectKey, Resource
from controller.core.store import Object, resource_version
from controller.core.workqueue import LOW_PRIORITY, ShutDownError, WorkQueue

if TYPE_CHECKING:
    from controller.core.apply import Applier
    from controller.core.cache import Cache
    from controller.core.client import KubeClient
    from controller.core.events import EventRecorder
    from controller.core.metrics import Metrics

log = structlog.get_logger("mcp-operator.controller")
_tracer = trace.get_tracer("mcp-operator")
"""Each reconcile is a span (a no-op until the process installs a tracer provider: telemetry)."""


def _span_attributes(key: ObjectKey, reconcile_id: str) -> dict[str, str]:
    return {
        "k8s.namespace.name": key.namespace or "",
        "k8s.object.name": key.name,
        "reconcile.id": reconcile_id,
    }


@dataclass(frozen=True)
class Result:
    """What a reconcile returns: done, or run again after ``delay`` seconds."""

    delay: float = 0.0

    @classmethod
    def done(cls) -> Result:
        return cls(0.0)

    @classmethod
    def requeue_after(cls, seconds: float) -> Result:
        if seconds <= 0:
            raise ValueError(f"requeue_after needs a positive delay, got {seconds}")
        return cls(seconds)


class TerminalError(Exception):
    """The object cannot be reconciled as it is (e.g. an invalid spec): do not retry until it changes."""


@dataclass
class ReconcileContext:
    """Everything a reconcile may use; reads go to ``cache``, writes through ``applier``."""

    controller: str
    reconcile_id: str
    cache: Cache
    applier: Applier
    events: EventRecorder
    client: KubeClient
    log: Any


Reconcile = Callable[[ObjectKey, ReconcileContext], Awaitable[Result]]
Mapper = Callable[[Object], list[ObjectKey]]


@dataclass(frozen=True)
class Watch:
    """Events on ``resource`` enqueue the keys ``mapper(obj)`` returns (e.g. via a cache index)."""

    resource: Resource
    mapper: Mapper


@dataclass
class Controller:
    """A controller declaration: reconcile ``for_`` objects, also when ``owns``/``watches`` objects change."""

    name: str
    for_: Resource
    reconcile: Reconcile
    owns: list[Resource] = field(default_factory=list)
    """Events on these map to the owner named by their controller ownerReference of kind ``for_``."""
    watches: list[Watch] = field(default_factory=list)
    workers: int | None = None
    """Concurrent reconciles; None takes the manager's default."""


class _Enqueue:
    """An informer event handler that maps objects to keys and adds them to a queue.

    With ``echo_of`` set (the primary and owned kinds), an add or update that only echoes this
    operator's own last apply to the object (same resourceVersion) is dropped: the reconcile that
    wrote it already accounted for it, so reconciling again would only recompute the same state. An
    event read while that apply still awaits its answer is judged when the answer arrives
    (``Applier.echo``); an event that maps to no key (another controller's child) is not judged at all.
    """

    def __init__(
        self, runner: ControllerRunner, mapper: Mapper, primary: bool, echo_of: Resource | None = None
    ) -> None:
        self._runner = runner
        self._user_mapper = mapper
        self._primary = primary
        self._echo_of = echo_of

    def _mapper(self, obj: Object) -> list[ObjectKey]:
        """The declared mapper; a failing one is logged and maps to nothing (it must not kill the watch)."""
        try:
            return list(self._user_mapper(obj))
        except Exception as exc:
            log.error(
                "event mapper failed; event dropped",
                controller=self._runner.name,
                object=str(ObjectKey.of(obj)),
                error=repr(exc),
            )
            return []

    def _unless_echo(self, obj: Object, keys: list[ObjectKey]) -> None:
        """Enqueue ``keys`` for a change to ``obj`` unless it is the echo of our own write."""
        if self._echo_of is None:
            self._runner.enqueue(keys, 0, obj if self._primary else None)
            return
        echo = self._runner.applier.echo(self._echo_of, obj, lambda is_echo: self._settle(obj, keys, is_echo))
        if echo is not None:
            self._settle(obj, keys, echo)

    def _settle(self, obj: Object, keys: list[ObjectKey], echo: bool) -> None:
        # A key deferred until its cache caught up with our write is due now, echo or not.
        if echo and not (self._primary and self._runner.release_deferred(ObjectKey.of(obj))):
            return
        self._runner.enqueue(keys, 0, obj if self._primary else None)

    def on_add(self, obj: Object, *, initial: bool) -> None:
        keys = self._mapper(obj)
        if not keys:
            return
        if initial:
            self._runner.enqueue(keys, LOW_PRIORITY, obj if self._primary else None)
            return
        self._unless_echo(obj, keys)

    def on_update(self, old: Object, new: Object, *, resync: bool) -> None:
        if resync:
            self._runner.enqueue(self._mapper(new), LOW_PRIORITY, new if self._primary else None, resync=True)
            return
        keys = self._mapper(new)
        keys += [k for k in self._mapper(old) if k not in keys]
        if keys:
            self._unless_echo(new, keys)

    def on_delete(self, obj: Object) -> None:
        self._runner.enqueue(self._mapper(obj), 0, None)


def owner_mapper(owner: Resource) -> Mapper:
    """Map an owned object to its controller owner's key when that owner is of kind ``owner``."""

    def mapper(obj: Object) -> list[ObjectKey]:
        ref = controller_of(obj)
        if ref is None or ref.get("kind") != owner.kind:
            return []
        if str(ref.get("apiVersion", "")).rpartition("/")[0] != owner.group:
            return []
        namespace = (obj.get("metadata") or {}).get("namespace") or "" if owner.namespaced else ""
        return [ObjectKey(namespace, str(ref["name"]))]

    return mapper


class ControllerRunner:
    """Runs one :class:`Controller`: its queue, its event handlers and its workers."""

    def __init__(
        self,
        controller: Controller,
        *,
        cache: Cache,
        applier: Applier,
        events: EventRecorder,
        client: KubeClient,
        metrics: Metrics,
        workers: int,
        queue: WorkQueue[ObjectKey] | None = None,
    ) -> None:
        self.controller = controller
        self.name = controller.name
        self.cache = cache
        self.applier = applier
        self.events = events
        self.client = client
        self.metrics = metrics
        self.workers = controller.workers or workers
        self.queue: WorkQueue[ObjectKey] = (
            queue if queue is not None else WorkQueue(controller.name, metrics=metrics)
        )
        self._terminal: dict[ObjectKey, str] = {}  # key -> resourceVersion that failed terminally
        self._deferred: set[ObjectKey] = set()  # keys waiting for the echo of our own write
        self._tasks: list[asyncio.Task[None]] = []
        self.reconciles = 0
        cache.informer(controller.for_).add_handler(
            _Enqueue(self, lambda o: [ObjectKey.of(o)], primary=True, echo_of=controller.for_)
        )
        for owned in controller.owns:
            cache.informer(owned).add_handler(
                _Enqueue(self, owner_mapper(controller.for_), primary=False, echo_of=owned)
            )
        for watch in controller.watches:
            cache.informer(watch.resource).add_handler(_Enqueue(self, watch.mapper, primary=False))
        applier.register(controller.for_)
        for owned in controller.owns:
            applier.register(owned)
        for result in ("success", "error", "requeue", "requeue_after"):
            metrics.reconcile_total.labels(self.name, result)
        for counter in (
            metrics.reconcile_errors_total,
            metrics.terminal_reconcile_errors_total,
            metrics.reconcile_panics_total,
        ):
            counter.labels(self.name)
        metrics.max_concurrent_reconciles.labels(self.name).set(self.workers)
        metrics.active_workers.labels(self.name).set(0)

    def enqueue(
        self, keys: list[ObjectKey], priority: int, primary: Object | None, *, resync: bool = False
    ) -> None:
        for key in keys:
            if primary is not None and key in self._terminal:
                if resync and self._terminal[key] == resource_version(primary):
                    continue  # unchanged since it failed terminally: nothing new to try
                if not resync:
                    del self._terminal[key]
            self.queue.add(key, priority)

    def release_deferred(self, key: ObjectKey) -> bool:
        """True (once) when ``key`` was deferred until its cache caught up with our own write."""
        if key in self._deferred:
            self._deferred.discard(key)
            return True
        return False

    def start(self) -> None:
        """Start the workers (the manager calls this once caches synced and leadership is held)."""
        for index in range(self.workers):
            self._tasks.append(asyncio.create_task(self._worker(), name=f"{self.name} worker {index}"))

    async def stop(self, grace: float = 30.0) -> None:
        """Stop taking keys; let in-flight reconciles finish within ``grace`` seconds, then cancel."""
        drained = await self.queue.shutdown_with_drain(grace)
        if not drained:
            log.warning("reconciles still running after the grace period; cancelling", controller=self.name)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _worker(self) -> None:
        active = self.metrics.active_workers.labels(self.name)
        while True:
            try:
                key = await self.queue.get()
            except ShutDownError:
                return
            active.inc()
            try:
                await self.reconcile_one(key)
            finally:
                active.dec()
                self.queue.done(key)

    async def reconcile_one(self, key: ObjectKey) -> None:
        """Reconcile ``key`` once and requeue it as the result says (controller-runtime semantics).

        A key whose cached object predates our own last write to it waits for that write's watch event
        (which enqueues it again): reconciling from the older copy would redo what was just written.
        """
        if self.applier.lags(self.controller.for_, key.namespace or None, key.name):
            self._deferred.add(key)
            self.queue.forget(key)
            return
        reconcile_id = uuid.uuid4().hex
        bound = log.bind(controller=self.name, key=str(key), reconcile_id=reconcile_id)
        ctx = ReconcileContext(
            controller=self.name,
            reconcile_id=reconcile_id,
            cache=self.cache,
            applier=self.applier,
            events=self.events,
            client=self.client,
            log=bound,
        )
        name = self.name
        started = time.monotonic()
        self.reconciles += 1
        with (
            structlog.contextvars.bound_contextvars(controller=name, key=str(key), reconcile_id=reconcile_id),
            _tracer.start_as_current_span(
                f"reconcile {name}", attributes=_span_attributes(key, reconcile_id)
            ),
        ):
            try:
                result = await self.controller.reconcile(key, ctx)
            except TerminalError as exc:
                trace.get_current_span().set_status(StatusCode.ERROR, str(exc))
                self.metrics.reconcile_total.labels(name, "error").inc()
                self.metrics.reconcile_errors_total.labels(name).inc()
                self.metrics.terminal_reconcile_errors_total.labels(name).inc()
                primary = self.cache.get(self.controller.for_, key.namespace or None, key.name)
                self._terminal[key] = resource_version(primary) if primary else ""
                self.queue.forget(key)
                bound.warning("reconcile failed terminally; waiting for the object to change", error=str(exc))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                trace.get_current_span().set_status(StatusCode.ERROR, str(exc))
                self.metrics.reconcile_total.labels(name, "error").inc()
                self.metrics.reconcile_errors_total.labels(name).inc()
                self.queue.add_rate_limited(key)
                if isinstance(exc, ApiError) and exc.expected_in_teardown:
                    # A namespace being deleted answers dozens of these: one quiet line each, no traceback.
                    bound.debug(
                        "reconcile met an object being deleted; retrying with backoff",
                        error=str(exc),
                        retries=self.queue.num_requeues(key),
                    )
                else:
                    self.metrics.reconcile_panics_total.labels(name).inc()
                    bound.error(
                        "reconcile failed; retrying with backoff",
                        error=str(exc) or type(exc).__name__,
                        retries=self.queue.num_requeues(key),
                        exc_info=exc,
                    )
            else:
                if not isinstance(result, Result):
                    self.metrics.reconcile_total.labels(name, "error").inc()
                    self.metrics.reconcile_errors_total.labels(name).inc()
                    self.queue.add_rate_limited(key)
                    bound.error("reconcile returned something other than a Result", returned=repr(result))
                elif result.delay > 0:
                    self.metrics.reconcile_total.labels(name, "requeue_after").inc()
                    self.queue.forget(key)
                    self.queue.add_after(key, result.delay)
                else:
                    self.metrics.reconcile_total.labels(name, "success").inc()
                    self.queue.forget(key)
            finally:
                self.metrics.reconcile_time_seconds.labels(name).observe(time.monotonic() - started)
