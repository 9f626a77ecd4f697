"""The read side every reconciler uses: shared informers per resource, queried without I/O.

``Cache`` creates one :class:`ResourceInformer` per resource on first use (shared by all controllers),
routes reads to the right namespace scope, and reports ``has_synced`` for ``/readyz``.
"""

from __future__ import annotations

import asyncio
import builtins

from controller.core.client import KubeClient
from controller.core.clock import Clock
from controller.core.informer import InformerSettings, ResourceInformer
from controller.core.resources import ObjectKey, Resource
from controller.core.store import IndexFunc, Object, Transform


class NotWatchedError(LookupError):
    """A read of a resource (or namespace) the operator does not watch."""


class Cache:
    """get / list / by_index over informer stores; all reads are local and synchronous."""

    def __init__(
        self,
        client: KubeClient,
        namespaces: list[str] | None = None,
        *,
        settings: InformerSettings | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.client = client
        self.namespaces = sorted(set(namespaces)) if namespaces else None
        self.settings = settings or InformerSettings()
        self._clock = clock
        self._informers: dict[Resource, ResourceInformer] = {}
        self._started = False

    # ----------------------------------------------------------------------------------- set-up

    def informer(self, resource: Resource) -> ResourceInformer:
        """The shared informer of ``resource`` (created on first call, before :meth:`run`)."""
        informer = self._informers.get(resource)
        if informer is None:
            if self._started:
                raise RuntimeError(f"cannot start watching {resource} after the cache started")
            informer = ResourceInformer(
                self.client, resource, self.namespaces, settings=self.settings, clock=self._clock
            )
            self._informers[resource] = informer
        return informer

    def add_index(self, resource: Resource, name: str, func: IndexFunc) -> None:
        """Register a secondary index ``func(obj) -> list[str]`` on ``resource``."""
        self.informer(resource).add_index(name, func)

    def set_transform(self, resource: Resource, func: Transform) -> None:
        """Replace the ingest transform of ``resource`` (keep stripping managedFields in yours)."""
        self.informer(resource).transform = func

    def set_label_selector(self, resource: Resource, selector: str) -> None:
        """Cache only the objects of ``resource`` that match ``selector`` (e.g. the pods we create)."""
        self.informer(resource).label_selector = selector

    # ------------------------------------------------------------------------------------ reads

    def get(self, resource: Resource, namespace: str | None, name: str) -> Object | None:
        """The cached object, or None. Never talks to the API server."""
        store = self._informer_for_read(resource).store_for(namespace if resource.namespaced else None)
        if store is None:
            raise NotWatchedError(f"namespace '{namespace}' is not watched (watched: {self.namespaces})")
        return store.get(ObjectKey(namespace or "" if resource.namespaced else "", name))

    def list(self, resource: Resource, namespace: str | None = None) -> builtins.list[Object]:
        """Cached objects of ``resource``, in one namespace or all watched ones."""
        informer = self._informer_for_read(resource)
        if namespace is not None and resource.namespaced:
            store = informer.store_for(namespace)
            return store.list(namespace) if store is not None else []
        return [obj for store in informer.stores() for obj in store.list()]

    def by_index(self, resource: Resource, index_name: str, value: str) -> builtins.list[Object]:
        """Cached objects whose index function returned ``value``."""
        return [
            obj
            for store in self._informer_for_read(resource).stores()
            for obj in store.by_index(index_name, value)
        ]

    def has_synced(self) -> bool:
        """True once every informer finished its first LIST."""
        return all(informer.has_synced() for informer in self._informers.values())

    def resources(self) -> builtins.list[Resource]:
        return list(self._informers)

    # ------------------------------------------------------------------------------------- run

    async def run(self) -> None:
        """Run every informer until cancelled."""
        self._started = True
        async with asyncio.TaskGroup() as group:
            for informer in self._informers.values():
                group.create_task(informer.run(), name=f"informers {informer.resource}")

    async def wait_synced(self, within: float | None = None) -> bool:
        """Wait until every informer synced; False when ``within`` seconds passed first."""
        try:
            await asyncio.wait_for(
                asyncio.gather(*(informer.wait_synced() for informer in self._informers.values())), within
            )
        except TimeoutError:
            return False
        return True

    def _informer_for_read(self, resource: Resource) -> ResourceInformer:
        informer = self._informers.get(resource)
        if informer is None:
            raise NotWatchedError(
                f"{resource} is not watched; declare it in a controller's for_/owns/watches "
                "or call Cache.informer(resource) before the manager starts"
            )
        return informer
