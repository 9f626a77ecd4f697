"""controller-runtime's reconcile contract, driven through ControllerRunner without a cluster."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from controller.core.client import ApiError, KubeClient
from controller.core.clock import ManualClock
from controller.core.controller import (
    Controller,
    ControllerRunner,
    ReconcileContext,
    Result,
    TerminalError,
    Watch,
)
from controller.core.metrics import Metrics
from controller.core.resources import ObjectKey, Resource
from controller.core.workqueue import WorkQueue
from tests.support.fake_kube import FakeResponse, FunctionTransport, runner_for

WIDGET = Resource("example.dev", "v1", "Widget", "widgets")
KEY = ObjectKey("ns", "w")


def make_runner(outcome: object) -> tuple[ControllerRunner, WorkQueue[ObjectKey], ManualClock, Metrics]:
    clock = ManualClock()
    metrics = Metrics()
    kube = KubeClient(FunctionTransport(lambda _: FakeResponse(200, {})), metrics=metrics)
    queue: WorkQueue[ObjectKey] = WorkQueue("widget", clock=clock, metrics=metrics)

    async def reconcile(key: ObjectKey, ctx: ReconcileContext) -> Result:
        assert ctx.reconcile_id and ctx.controller == "widget"
        if isinstance(outcome, BaseException):
            raise outcome
        assert isinstance(outcome, Result)
        return outcome

    runner = runner_for(Controller("widget", WIDGET, reconcile), kube, metrics, queue)
    return runner, queue, clock, metrics


def count(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, {"controller": "widget", **labels}) or 0.0


async def test_success_forgets_the_backoff() -> None:
    runner, queue, _, metrics = make_runner(Result.done())
    queue.add_rate_limited(KEY)
    await runner.reconcile_one(KEY)
    assert queue.num_requeues(KEY) == 0
    assert count(metrics, "controller_runtime_reconcile_total", result="success") == 1


async def test_requeue_after_resets_backoff_and_delays() -> None:
    runner, queue, clock, metrics = make_runner(Result.requeue_after(30))
    queue.add_rate_limited(KEY)
    await clock.advance(1)
    assert await queue.get() == KEY
    await runner.reconcile_one(KEY)
    queue.done(KEY)
    assert queue.num_requeues(KEY) == 0 and queue.waiting() == 1
    await clock.advance(29.9)
    assert len(queue) == 0
    await clock.advance(0.2)
    queue._promote_due()
    assert len(queue) == 1
    assert count(metrics, "controller_runtime_reconcile_total", result="requeue_after") == 1


async def test_exceptions_are_caught_counted_and_retried_with_growing_backoff() -> None:
    runner, queue, _, metrics = make_runner(RuntimeError("boom"))
    for _ in range(3):
        await runner.reconcile_one(KEY)
    assert queue.num_requeues(KEY) == 3 and queue.waiting() == 1
    assert count(metrics, "controller_runtime_reconcile_errors_total") == 3
    assert count(metrics, "controller_runtime_reconcile_panics_total") == 3


TERMINATING = {
    "details": {"causes": [{"reason": "NamespaceTerminating", "message": "namespace ns is being terminated"}]}
}


@pytest.mark.parametrize(
    "error",
    [
        ApiError(404, "NotFound", 'deployments.apps "w" not found'),
        ApiError(409, "Conflict", "the object has been modified"),
        ApiError(403, "Forbidden", "unable to create new content in namespace ns", TERMINATING),
    ],
    ids=["404", "409", "403 namespace terminating"],
)
async def test_errors_of_a_namespace_teardown_are_one_debug_line_and_retried(error: ApiError) -> None:
    runner, queue, _, metrics = make_runner(error)
    with capture_logs() as logs:
        await runner.reconcile_one(KEY)
    assert [(e["log_level"], "exc_info" in e) for e in logs] == [("debug", False)], logs
    assert error.message in logs[0]["error"]
    assert queue.num_requeues(KEY) == 1  # still retried: the object may come back or converge
    assert count(metrics, "controller_runtime_reconcile_errors_total") == 1
    assert count(metrics, "controller_runtime_reconcile_panics_total") == 0


async def test_a_forbidden_write_for_another_reason_is_an_error_with_its_traceback() -> None:
    runner, _, _, _ = make_runner(ApiError(403, "Forbidden", "roles.rbac.authorization.k8s.io is forbidden"))
    with capture_logs() as logs:
        await runner.reconcile_one(KEY)
    assert [(e["log_level"], "exc_info" in e) for e in logs] == [("error", True)], logs


async def test_terminal_errors_are_not_retried_until_the_object_changes() -> None:
    runner, queue, _, metrics = make_runner(TerminalError("spec.port: must be > 0"))
    await runner.reconcile_one(KEY)
    assert queue.waiting() == 0 and len(queue) == 0
    assert count(metrics, "controller_runtime_terminal_reconcile_errors_total") == 1
    obj = {"metadata": {"name": "w", "namespace": "ns", "resourceVersion": ""}}
    runner.enqueue([KEY], -100, obj, resync=True)
    assert len(queue) == 0, "a resync of the unchanged object does not retry it"
    runner.enqueue([KEY], 0, {**obj, "metadata": {**obj["metadata"], "resourceVersion": "2"}})
    assert len(queue) == 1, "a change does"


def test_requeue_after_needs_a_positive_delay() -> None:
    with pytest.raises(ValueError, match="positive"):
        Result.requeue_after(0)


def test_a_failing_watch_mapper_drops_the_event_without_breaking_the_informer() -> None:
    runner, _, _, metrics = make_runner(Result.done())
    gizmo = Resource("example.dev", "v1", "Gizmo", "gizmos")

    def broken(obj: dict[str, object]) -> list[ObjectKey]:
        raise KeyError("spec")

    async def reconcile(key: ObjectKey, ctx: ReconcileContext) -> Result:
        return Result.done()

    watcher = ControllerRunner(
        Controller("gizmo-watcher", WIDGET, reconcile, watches=[Watch(gizmo, broken)]),
        cache=runner.cache,
        applier=runner.applier,
        events=runner.events,
        client=runner.client,
        metrics=metrics,
        workers=1,
    )
    (handler,) = runner.cache.informer(gizmo).handlers
    handler.on_add({"metadata": {"name": "g", "namespace": "ns"}}, initial=False)  # must not raise
    assert len(watcher.queue) == 0


async def test_a_key_whose_cache_predates_our_own_write_waits_for_its_event() -> None:
    runner, _, _, metrics = make_runner(Result.done())
    store = runner.cache.informer(WIDGET).store_for("ns")
    assert store is not None
    store.upsert({"apiVersion": "example.dev/v1", "kind": "Widget",
                  "metadata": {"name": "w", "namespace": "ns", "resourceVersion": "5"}})  # fmt: skip
    runner.applier._last[(WIDGET, "ns", "w", "status")] = ("digest", "7", "")  # our status write was rv 7
    await runner.reconcile_one(KEY)
    assert count(metrics, "controller_runtime_reconcile_total", result="success") == 0
    store.upsert({"apiVersion": "example.dev/v1", "kind": "Widget",
                  "metadata": {"name": "w", "namespace": "ns", "resourceVersion": "7"}})  # fmt: skip
    await runner.reconcile_one(KEY)
    assert count(metrics, "controller_runtime_reconcile_total", result="success") == 1


def widget(rv: str) -> dict[str, object]:
    return {"apiVersion": "example.dev/v1", "kind": "Widget",
            "metadata": {"name": "w", "namespace": "ns", "resourceVersion": rv}}  # fmt: skip


async def test_the_echo_of_our_own_write_is_not_reconciled_but_other_changes_are() -> None:
    runner, queue, _, _ = make_runner(Result.done())
    runner.applier._last[(WIDGET, "ns", "w", "status")] = ("digest", "7", "")  # our status write was rv 7
    handler = runner.cache.informer(WIDGET).handlers[0]
    handler.on_update(widget("6"), widget("7"), resync=False)
    assert len(queue) == 0
    handler.on_update(widget("7"), widget("8"), resync=False)  # someone else's change
    assert len(queue) == 1


async def test_a_deferred_key_is_reconciled_when_the_echo_arrives() -> None:
    runner, queue, _, metrics = make_runner(Result.done())
    store = runner.cache.informer(WIDGET).store_for("ns")
    assert store is not None
    store.upsert(widget("5"))
    runner.applier._last[(WIDGET, "ns", "w", "status")] = ("digest", "7", "")
    await runner.reconcile_one(KEY)  # the cache predates our write: deferred
    assert count(metrics, "controller_runtime_reconcile_total", result="success") == 0
    store.upsert(widget("7"))
    runner.cache.informer(WIDGET).handlers[0].on_update(widget("5"), widget("7"), resync=False)
    assert len(queue) == 1
