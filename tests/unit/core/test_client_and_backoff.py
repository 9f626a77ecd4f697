"""The client seam with a plain-function transport: 429 Retry-After, paging, errors; informer backoff."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from controller.core.client import ApiError, KubeClient
from controller.core.clock import ManualClock
from controller.core.informer import Backoff, InformerSettings
from controller.core.resources import CONFIGMAP, DEPLOYMENT
from kube.transport import Request
from tests.support.fake_kube import FakeResponse, FunctionTransport


async def test_429_is_retried_after_retry_after_and_counted() -> None:
    clock = ManualClock()
    answers = [
        FakeResponse(429, {"reason": "TooManyRequests"}, {"Retry-After": "3"}),
        FakeResponse(200, {"ok": 1}),
    ]
    transport = FunctionTransport(lambda _: answers.pop(0))
    kube = KubeClient(transport, clock=clock)
    task = asyncio.create_task(kube.get(CONFIGMAP, "ns", "cm"))
    await clock.advance(0)  # let the first attempt run and start waiting
    await clock.advance(2.9)
    assert not task.done(), "the retry must wait for Retry-After"
    await clock.advance(0.2)
    assert await asyncio.wait_for(task, 1) == {"ok": 1}
    sample = kube.metrics.registry.get_sample_value
    assert sample("rest_client_requests_total", {"code": "429", "method": "GET", "host": "fake:6443"}) == 1
    assert sample("rest_client_requests_total", {"code": "200", "method": "GET", "host": "fake:6443"}) == 1


async def test_client_side_bucket_spaces_requests_beyond_the_burst() -> None:
    clock = ManualClock()
    transport = FunctionTransport(lambda _: FakeResponse(200, {}))
    kube = KubeClient(transport, qps=2, burst=2, clock=clock)
    tasks = [asyncio.create_task(kube.get(CONFIGMAP, "ns", f"c{i}")) for i in range(4)]
    await clock.advance(0)
    assert len(transport.requests) == 2, "the burst goes at once"
    await clock.advance(0.5)
    assert len(transport.requests) == 3
    await clock.advance(0.5)
    await asyncio.gather(*tasks)
    assert len(transport.requests) == 4


async def test_list_follows_continue_tokens_and_404_get_is_none() -> None:
    def handler(request: Request) -> FakeResponse:
        if request.path.endswith("/missing"):
            return FakeResponse(404, {"reason": "NotFound", "message": "not found"})
        if "continue" not in request.query:
            return FakeResponse(200, {"metadata": {"continue": "t1"}, "items": [{"metadata": {"name": "a"}}]})
        return FakeResponse(
            200, {"metadata": {"resourceVersion": "42"}, "items": [{"metadata": {"name": "b"}}]}
        )

    kube = KubeClient(FunctionTransport(handler))
    items, rv = await kube.list(DEPLOYMENT, "ns")
    assert [i["metadata"]["name"] for i in items] == ["a", "b"] and rv == "42"
    assert items[0]["kind"] == "Deployment" and items[0]["apiVersion"] == "apps/v1"
    assert await kube.get(DEPLOYMENT, "ns", "missing") is None


async def test_apply_is_server_side_apply_with_our_field_manager_and_force() -> None:
    transport = FunctionTransport(lambda _: FakeResponse(200, {"metadata": {"resourceVersion": "1"}}))
    await KubeClient(transport).apply(CONFIGMAP, {"metadata": {"name": "c", "namespace": "ns"}, "data": {}})
    request = transport.requests[0]
    assert (request.method, request.path) == ("PATCH", "/api/v1/namespaces/ns/configmaps/c")
    assert request.content_type == "application/apply-patch+yaml"
    assert request.query == {"fieldManager": "mcp-operator", "force": "true"}
    assert request.body["kind"] == "ConfigMap" and request.body["apiVersion"] == "v1"


async def test_errors_carry_status_and_message() -> None:
    transport = FunctionTransport(lambda _: FakeResponse(409, {"reason": "Conflict", "message": "changed"}))
    with pytest.raises(ApiError) as info:
        await KubeClient(transport).replace(CONFIGMAP, {"metadata": {"name": "c", "namespace": "ns"}})
    assert info.value.conflict and "changed" in str(info.value)


def test_reconnect_backoff_doubles_from_0_8_to_30_with_jitter_and_resets() -> None:
    clock = ManualClock()
    backoff = Backoff(InformerSettings(), clock)
    bases = [0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0]
    for base in bases:
        assert base <= backoff.delay() <= 2 * base
    clock._now += 121  # two minutes of health
    assert 0.8 <= backoff.delay() <= 1.6


async def test_requests_throttled_together_retry_one_by_one() -> None:
    """A 429 pauses the whole client-side bucket for Retry-After, then requests go at qps, not as a
    burst (a burst would hit the same in-flight limit again, all at once)."""
    clock = ManualClock()
    throttled: set[str] = set()
    sent: list[float] = []

    def answer(request: Request) -> FakeResponse:
        sent.append(clock.now())
        if request.path not in throttled:  # every request is refused once
            throttled.add(request.path)
            return FakeResponse(429, {"reason": "TooManyRequests"}, {"Retry-After": "1"})
        return FakeResponse(200, {})

    kube = KubeClient(FunctionTransport(answer), qps=4, burst=10, clock=clock)
    tasks = [asyncio.create_task(kube.get(CONFIGMAP, "ns", f"c{i}")) for i in range(4)]
    for _ in range(400):
        await clock.advance(0.05)
        if all(task.done() for task in tasks):
            break
    assert [await task for task in tasks] == [{}] * 4
    assert len(sent) == 8
    assert sent[1] >= sent[0] + 1.0, "nothing is sent before Retry-After has passed"
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert all(gap >= 0.2 for gap in gaps), f"requests after a 429 came as a burst: {sent}"
