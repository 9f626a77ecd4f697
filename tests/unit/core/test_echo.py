"""The echo of our own apply is recognised even when its watch event is read before the apply's answer.

The API server sends a write's watch event and its answer at about the same moment on two connections;
when the event was read first it used to look like someone else's change and cost the owner a second
reconcile (about 1.25 reconciles per MCPServer on creation in ``hack/bench_operator``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from controller.core.client import ApiError, KubeClient
from controller.core.controller import Controller, ControllerRunner, ReconcileContext, Result
from controller.core.metrics import Metrics
from controller.core.resources import CONFIGMAP, ObjectKey, Resource
from kube.transport import Request
from tests.support.fake_kube import FakeResponse, runner_for

WIDGET = Resource("example.dev", "v1", "Widget", "widgets")
OWNER = ObjectKey("ns", "w")
Obj = dict[str, Any]


class GatedTransport:
    """Answers each apply with resourceVersion ``rv`` (or ``status``) once ``gate`` is set."""

    host = "fake:6443"

    def __init__(self, rv: str = "10", status: int = 200) -> None:
        self.rv = rv
        self.status = status
        self.gate = asyncio.Event()
        self.sent = asyncio.Event()

    async def send(self, request: Request) -> FakeResponse:
        self.sent.set()
        await self.gate.wait()
        if self.status != 200:
            return FakeResponse(self.status, {"reason": "InternalError", "message": "boom"})
        body = dict(request.body)
        body["metadata"] = {**body["metadata"], "resourceVersion": self.rv}
        return FakeResponse(200, body)

    async def close(self) -> None:
        pass


def child(rv: str | None = None) -> Obj:
    meta: Obj = {
        "name": "w-config",
        "namespace": "ns",
        "ownerReferences": [
            {"apiVersion": "example.dev/v1", "kind": "Widget", "name": "w", "uid": "u1", "controller": True}
        ],
    }
    if rv is not None:
        meta["resourceVersion"] = rv
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "v"}}


def make(transport: GatedTransport) -> ControllerRunner:
    metrics = Metrics()

    async def reconcile(key: ObjectKey, ctx: ReconcileContext) -> Result:
        return Result.done()

    controller = Controller("widget", WIDGET, reconcile, owns=[CONFIGMAP])
    return runner_for(controller, KubeClient(transport, qps=0, metrics=metrics), metrics)


def owned_handler(runner: ControllerRunner) -> Any:
    (handler,) = [h for h in runner.cache.informer(CONFIGMAP).handlers if type(h).__name__ == "_Enqueue"]
    return handler


async def apply_in_flight(runner: ControllerRunner, transport: GatedTransport) -> asyncio.Task[Any]:
    task = asyncio.create_task(runner.applier.apply(child()))
    await asyncio.wait_for(transport.sent.wait(), 1)
    return task


async def test_an_echo_read_before_the_answer_does_not_enqueue_the_owner() -> None:
    transport = GatedTransport(rv="10")
    runner = make(transport)
    task = await apply_in_flight(runner, transport)
    owned_handler(runner).on_add(child("10"), initial=False)  # the watch event, read first
    assert len(runner.queue) == 0
    transport.gate.set()
    await task
    assert len(runner.queue) == 0, "the held event was our own write's echo"
    owned_handler(runner).on_update(child("10"), child("10"), resync=False)  # and after the answer
    assert len(runner.queue) == 0


async def test_another_change_read_during_our_apply_enqueues_the_owner_once_answered() -> None:
    transport = GatedTransport(rv="10")
    runner = make(transport)
    task = await apply_in_flight(runner, transport)
    owned_handler(runner).on_add(child("9"), initial=False)  # someone else's write, just before ours
    assert len(runner.queue) == 0, "held until our answer tells whose it is"
    transport.gate.set()
    await task
    assert len(runner.queue) == 1


async def test_an_event_held_during_a_failed_apply_enqueues_the_owner() -> None:
    transport = GatedTransport(status=500)
    runner = make(transport)
    task = await apply_in_flight(runner, transport)
    owned_handler(runner).on_add(child("10"), initial=False)
    transport.gate.set()
    with pytest.raises(ApiError):
        await task
    assert len(runner.queue) == 1


async def test_a_held_primary_echo_releases_a_deferred_key() -> None:
    transport = GatedTransport(rv="7")
    runner = make(transport)
    runner._deferred.add(OWNER)  # a reconcile found the cache older than our last write
    widget: Obj = {
        "apiVersion": "example.dev/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": "ns"},
    }
    task = asyncio.create_task(runner.applier.apply_status(widget, {"phase": "Ready"}))
    await asyncio.wait_for(transport.sent.wait(), 1)
    echoed = {**widget, "metadata": {**widget["metadata"], "resourceVersion": "7"}}
    runner.cache.informer(WIDGET).handlers[0].on_update(echoed, echoed, resync=False)
    assert len(runner.queue) == 0
    transport.gate.set()
    await task
    assert len(runner.queue) == 1, "the deferred key is due once its echo is known"


def test_events_mapping_to_no_key_are_not_judged() -> None:
    runner = make(GatedTransport())
    runner.applier._in_flight[(CONFIGMAP, "ns", "orphan")] = 1  # an apply in flight to that object
    orphan = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "orphan", "namespace": "ns", "resourceVersion": "3"}}  # fmt: skip
    owned_handler(runner).on_add(orphan, initial=False)
    assert not runner.applier._held, "an event no key cares about is not held"
