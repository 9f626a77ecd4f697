"""Informers: LIST then WATCH one kind in one namespace scope, keep a store, tell handlers.

The loop follows client-go's reflector and kopf's hard-won lessons:
- watch from the list's resourceVersion with bookmarks, each watch with a random 5-10 min timeout;
- reconnect with backoff 0.8 s doubling to 30 s with full jitter (reset after 2 min of health);
- relist (a consistent read) on 410 Gone; re-watch from the last resourceVersion on other failures;
- a stream silent for ``inactivity_timeout`` (~70 s; the API server bookmarks about every 60 s) is
  treated as dead and reconnected.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

from controller.core.client import ApiError, KubeClient
from controller.core.clock import Clock, MonotonicClock
from controller.core.resources import ObjectKey, Resource
from controller.core.store import Object, Store, Transform, compact, resource_version, strip_unread_fields
from kube.transport import TransportError

log = structlog.get_logger("mcp-operator.informer")


class EventHandler(Protocol):
    """Receives cache changes; must not block (controllers only enqueue keys)."""

    def on_add(self, obj: Object, *, initial: bool) -> None: ...

    def on_update(self, old: Object, new: Object, *, resync: bool) -> None: ...

    def on_delete(self, obj: Object) -> None: ...


@dataclass
class InformerSettings:
    """Timings of the list/watch loop (client-go and kopf defaults)."""

    min_watch_timeout: float = 300.0
    """Each watch asks the server to end it after a random time in [min, 2 x min] seconds."""
    inactivity_timeout: float = 70.0
    """No event or bookmark for this long means the stream is dead: reconnect."""
    backoff_initial: float = 0.8
    backoff_max: float = 30.0
    backoff_reset_after: float = 120.0
    """A loop healthy for this long starts its next backoff from ``backoff_initial`` again."""
    resync_period: float = 10 * 3600.0
    """Replay every cached object to handlers as an update (low priority) this often; 0 disables."""
    page_size: int = 500


class Backoff:
    """0.8 s doubling to 30 s with full jitter, reset after a healthy spell."""

    def __init__(self, settings: InformerSettings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock
        self._next = settings.backoff_initial
        self._last_failure: float | None = None

    def delay(self) -> float:
        now = self._clock.now()
        if self._last_failure is not None and now - self._last_failure > self._settings.backoff_reset_after:
            self._next = self._settings.backoff_initial
        self._last_failure = now
        base = self._next
        self._next = min(self._settings.backoff_max, self._next * 2)
        return base + random.uniform(0, base)  # jitter factor 1.0, as client-go


class Informer:
    """One resource in one namespace scope (``namespace=None`` = all namespaces)."""

    def __init__(
        self,
        client: KubeClient,
        resource: Resource,
        namespace: str | None,
        *,
        store: Store,
        handlers: list[EventHandler],
        transform: Callable[[], Transform],
        settings: InformerSettings | None = None,
        clock: Clock | None = None,
        label_selector: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.client = client
        self._label_selector = label_selector
        self.resource = resource
        self.namespace = namespace
        self.store = store
        self._handlers = handlers
        self._transform = transform
        self.settings = settings or InformerSettings()
        self._clock = clock or MonotonicClock()
        self._synced = asyncio.Event()
        self.last_resource_version = ""
        self.relists = 0
        scope = namespace or ""
        client.metrics.informer_synced.labels(str(resource), scope).set(0)
        self._relist_counter = client.metrics.informer_relists_total.labels(str(resource), scope)
        self._synced_gauge = client.metrics.informer_synced.labels(str(resource), scope)
        self._log = log.bind(resource=str(resource), namespace=scope or "*")

    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        await self._synced.wait()

    async def run(self) -> None:
        """List and watch until cancelled."""
        backoff = Backoff(self.settings, self._clock)
        rv: str | None = None
        while True:
            try:
                if rv is None:
                    rv = await self._relist()
                rv = await self._watch(rv)
            except ApiError as exc:
                rv = self._resume_from(rv)
                if exc.gone:
                    self._log.info("watch history expired (410 Gone); relisting", error=exc.message)
                    rv = None
                    continue
                delay = backoff.delay()
                self._log.warning("list/watch failed", status=exc.status, error=exc.message, retry_in=delay)
                await self._clock.sleep(delay)
            except TimeoutError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    # A cancel that landed as the timeout fired comes out as TimeoutError (Python 3.11's
                    # asyncio.timeout and wait_for): it is still a cancel, not a silent watch.
                    raise asyncio.CancelledError from None
                # The watch was silent for inactivity_timeout. Silence is not a failure: kube-apiserver
                # before 1.27 bookmarks only just before a watch's own timeout, so a quiet kind's watch
                # says nothing for minutes. Re-watch at once from the last delivered resourceVersion; a
                # backoff here would grow to 30 s and hold that kind's next changes back.
                rv = self._resume_from(rv)
                self._log.debug("watch silent; re-watching", seconds=self.settings.inactivity_timeout)
            except (TransportError, ValueError) as exc:
                rv = self._resume_from(rv)
                delay = backoff.delay()
                self._log.warning(
                    "list/watch interrupted", error=str(exc) or type(exc).__name__, retry_in=delay
                )
                await self._clock.sleep(delay)

    def _resume_from(self, rv: str | None) -> str | None:
        """After a broken watch, continue from the last resourceVersion it delivered (not from where
        it started), so events are not replayed; None (relist) stays None."""
        return None if rv is None else (self.last_resource_version or rv)

    async def _relist(self) -> str:
        items, rv = await self.client.list(
            self.resource,
            self.namespace,
            label_selector=self._label_selector(),
            page_size=self.settings.page_size,
        )
        transform = self._transform()
        initial = not self._synced.is_set()
        added, updated, deleted = self.store.replace(compact(transform(obj)) for obj in items)
        self.relists += 1
        self._relist_counter.inc()
        self.last_resource_version = rv
        for obj in added:
            for handler in self._handlers:
                handler.on_add(obj, initial=initial)
        for old, new in updated:
            for handler in self._handlers:
                handler.on_update(old, new, resync=False)
        for obj in deleted:
            for handler in self._handlers:
                handler.on_delete(obj)
        if initial:
            self._synced.set()
            self._synced_gauge.set(1)
            self._log.info("cache synced", objects=len(items), resource_version=rv)
        else:
            self._log.info("relisted", objects=len(items), changed=len(added) + len(updated) + len(deleted))
        return rv

    async def _watch(self, rv: str) -> str:
        """Watch from ``rv`` until the server ends the stream; return the last resourceVersion seen."""
        self.last_resource_version = rv
        timeout = int(self.settings.min_watch_timeout * (1 + random.random()))
        transform = self._transform()
        events = self.client.watch(
            self.resource,
            self.namespace,
            rv,
            timeout_seconds=timeout,
            line_timeout=self.settings.inactivity_timeout,
            label_selector=self._label_selector(),
        )
        async for event in events:
            kind = event.get("type")
            obj = event.get("object") or {}
            if kind == "ERROR":
                raise ApiError(
                    int(obj.get("code", 500)), str(obj.get("reason", "")), str(obj.get("message", "")), obj
                )
            new_rv = resource_version(obj)
            if kind == "BOOKMARK":
                rv = new_rv or rv
                self.last_resource_version = rv
                continue
            obj = compact(transform(obj))
            if kind in ("ADDED", "MODIFIED"):
                old = self.store.upsert(obj)
                for handler in self._handlers:
                    if old is None:
                        handler.on_add(obj, initial=False)
                    else:
                        handler.on_update(old, obj, resync=False)
            elif kind == "DELETED":
                gone = self.store.delete(ObjectKey.of(obj)) or obj
                for handler in self._handlers:
                    handler.on_delete(gone)
            rv = new_rv or rv
            self.last_resource_version = rv
        return rv


class ResourceInformer:
    """All scopes of one resource: the shared point where handlers, indexes and transforms attach."""

    def __init__(
        self,
        client: KubeClient,
        resource: Resource,
        namespaces: list[str] | None,
        *,
        settings: InformerSettings | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.resource = resource
        self.settings = settings or InformerSettings()
        self._clock = clock or MonotonicClock()
        self.handlers: list[EventHandler] = []
        self.transform: Transform = strip_unread_fields
        self.label_selector: str | None = None
        """Only objects matching this label selector are listed and watched (None: all)."""
        scopes: list[str | None] = (
            [None] if namespaces is None or not resource.namespaced else list(namespaces)
        )
        self.informers: dict[str | None, Informer] = {
            scope: Informer(
                client,
                resource,
                scope,
                store=Store(),
                handlers=self.handlers,
                transform=lambda: self.transform,
                label_selector=lambda: self.label_selector,
                settings=self.settings,
                clock=self._clock,
            )
            for scope in scopes
        }

    def add_handler(self, handler: EventHandler) -> None:
        self.handlers.append(handler)

    def add_index(self, name: str, func: Callable[[Object], list[str]]) -> None:
        for informer in self.informers.values():
            informer.store.add_indexer(name, func)

    def store_for(self, namespace: str | None) -> Store | None:
        if None in self.informers:
            return self.informers[None].store
        informer = self.informers.get(namespace)
        return informer.store if informer else None

    def stores(self) -> list[Store]:
        return [informer.store for informer in self.informers.values()]

    def has_synced(self) -> bool:
        return all(informer.has_synced() for informer in self.informers.values())

    async def wait_synced(self) -> None:
        await asyncio.gather(*(informer.wait_synced() for informer in self.informers.values()))

    async def run(self) -> None:
        """Run every scope's loop, and the periodic resync, until cancelled."""
        async with asyncio.TaskGroup() as group:
            for informer in self.informers.values():
                group.create_task(
                    informer.run(), name=f"informer {self.resource} {informer.namespace or '*'}"
                )
            if self.settings.resync_period > 0:
                group.create_task(self._resync_loop(), name=f"resync {self.resource}")

    async def _resync_loop(self) -> None:
        await self.wait_synced()
        while True:
            period = self.settings.resync_period
            await self._clock.sleep(period * (1 + 0.1 * random.random()))
            for store in self.stores():
                for obj in store.list():
                    for handler in self.handlers:
                        handler.on_update(obj, obj, resync=True)
