"""The Kubernetes client seam without a cluster: a plain-function transport and a runner over it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping

from controller.core.apply import Applier
from controller.core.cache import Cache
from controller.core.client import KubeClient
from controller.core.controller import Controller, ControllerRunner
from controller.core.events import EventRecorder
from controller.core.metrics import Metrics
from controller.core.resources import ObjectKey
from controller.core.workqueue import WorkQueue
from kube.transport import Request


class FakeResponse:
    def __init__(self, status: int, body: object, headers: Mapping[str, str] | None = None) -> None:
        self.status = status
        self.headers = dict(headers or {})
        self._data = json.dumps(body).encode()

    async def read(self) -> bytes:
        return self._data

    async def lines(self) -> AsyncIterator[bytes]:
        for line in self._data.splitlines():
            yield line

    def close(self) -> None:
        pass


class FunctionTransport:
    host = "fake:6443"

    def __init__(self, handler: Callable[[Request], FakeResponse]) -> None:
        self.handler = handler
        self.requests: list[Request] = []

    async def send(self, request: Request) -> FakeResponse:
        self.requests.append(request)
        return self.handler(request)

    async def close(self) -> None:
        pass


def runner_for(
    controller: Controller, kube: KubeClient, metrics: Metrics, queue: WorkQueue[ObjectKey] | None = None
) -> ControllerRunner:
    """One worker running ``controller`` over a fresh cache, with its own Applier."""
    cache = Cache(kube)
    return ControllerRunner(
        controller,
        cache=cache,
        applier=Applier(kube, cache),
        events=EventRecorder(kube),
        client=kube,
        metrics=metrics,
        workers=1,
        queue=queue,
    )
