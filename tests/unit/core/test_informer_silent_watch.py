"""A watch that stays silent past the inactivity timeout is re-opened at once, not after a backoff.

kube-apiserver before 1.27 sends a bookmark only just before a watch's own timeout (5-10 min), so the
watch of a quiet kind is silent for minutes although nothing is wrong. Treating that silence as a
failure made the reconnect backoff grow to 30 s (+ jitter) and held every later change of that kind
back by up to a minute.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from controller.core.client import KubeClient
from controller.core.clock import ManualClock
from controller.core.informer import Informer, InformerSettings
from controller.core.resources import CONFIGMAP
from controller.core.store import Store, strip_unread_fields
from kube.transport import Request


class Response:
    def __init__(self, body: object | None) -> None:
        self.status = 200
        self.headers: dict[str, str] = {}
        self._body = body

    async def read(self) -> bytes:
        return json.dumps(self._body).encode()

    async def lines(self) -> AsyncIterator[bytes]:
        await asyncio.Event().wait()  # a stream that never says anything
        yield b""

    def close(self) -> None:
        pass


class SilentWatches:
    """LIST answers an empty list at resourceVersion 7; every WATCH stays silent."""

    host = "fake:6443"

    def __init__(self) -> None:
        self.watches: list[Request] = []
        self.lists = 0
        self.fourth_watch = asyncio.Event()

    async def send(self, request: Request) -> Response:
        if request.query.get("watch") == "true":
            self.watches.append(request)
            if len(self.watches) >= 4:
                self.fourth_watch.set()
            return Response(None)
        self.lists += 1
        return Response({"items": [], "metadata": {"resourceVersion": "7"}})

    async def close(self) -> None:
        pass


async def run_until_fourth_watch(transport: SilentWatches) -> None:
    """Run an informer over ``transport`` until its fourth WATCH, with watches silent for 10 ms at most."""
    clock = ManualClock()  # never advanced: a backoff sleep would never end
    informer = Informer(
        KubeClient(transport, qps=0, clock=clock),
        CONFIGMAP,
        "ns",
        store=Store(),
        handlers=[],
        transform=lambda: strip_unread_fields,
        settings=InformerSettings(inactivity_timeout=0.01),
        clock=clock,
    )
    task = asyncio.create_task(informer.run())
    try:
        async with asyncio.timeout(5):
            await transport.fourth_watch.wait()
    finally:
        task.cancel()


async def test_silent_watch_is_reopened_from_its_resource_version_without_backoff() -> None:
    transport = SilentWatches()
    await run_until_fourth_watch(transport)
    assert transport.lists == 1, "silence is not a reason to relist"
    assert {w.query["resourceVersion"] for w in transport.watches} == {"7"}


class FirstWatchNeverAnswers(SilentWatches):
    """The first WATCH never gets response headers (a dead pooled connection); later ones do."""

    async def send(self, request: Request) -> Response:
        if request.query.get("watch") == "true" and not self.watches:
            self.watches.append(request)
            await asyncio.Event().wait()
        return await super().send(request)


async def test_watch_whose_answer_never_comes_is_given_up_after_the_inactivity_timeout() -> None:
    transport = FirstWatchNeverAnswers()
    await run_until_fourth_watch(transport)
    assert transport.lists == 1
    assert {w.query["resourceVersion"] for w in transport.watches} == {"7"}
