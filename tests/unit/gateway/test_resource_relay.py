"""The gateway's resource subscriptions: a backend is subscribed while any front session or listen stream
holds the URI, and unsubscribed when the last one lets go (pure bookkeeping, backends faked)."""

from __future__ import annotations

from typing import Any, cast

import mcp_types as types
import pytest
from mcp.server.connection import Connection
from mcp.shared.exceptions import MCPError

from gateway.vmcp.backend import BackendConnection
from gateway.vmcp.notify import FrontNotifier
from gateway.vmcp.resource_updates import ResourceRelay

URI = "demo://resource/1"


class FakeBackend:
    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []

    async def subscribe(self, uri: str, *, on: bool = True) -> None:
        self.calls.append((uri, on))


class FakeConnection:
    """What the relay uses of an SDK ``Connection``: its teardown stack and the update sender."""

    def __init__(self) -> None:
        self.teardown: list[Any] = []
        self.sent: list[str] = []

    @property
    def exit_stack(self) -> FakeConnection:
        return self

    def callback(self, func: Any, *args: Any) -> None:
        self.teardown.append((func, args))

    async def send_resource_updated(self, uri: str) -> None:
        self.sent.append(uri)


def _relay(backend: FakeBackend, spawned: list[Any]) -> ResourceRelay:
    async def owner(uri: str) -> BackendConnection | None:
        return cast(BackendConnection, backend) if uri == URI else None

    return ResourceRelay(FrontNotifier(), owner, lambda func, *args: spawned.append((func, args)))


async def _two_subscribers() -> tuple[ResourceRelay, FakeBackend, list[Any], FakeConnection, FakeConnection]:
    """A relay whose two sessions subscribed to ``URI``: (relay, backend, spawned tasks, sessions)."""
    backend = FakeBackend()
    spawned: list[Any] = []
    relay = _relay(backend, spawned)
    first, second = FakeConnection(), FakeConnection()
    await relay.subscribe(URI, cast(Connection, first))
    await relay.subscribe(URI, cast(Connection, second))
    return relay, backend, spawned, first, second


async def test_the_backend_is_subscribed_once_and_released_by_the_last_holder() -> None:
    relay, backend, _, first, second = await _two_subscribers()
    assert backend.calls == [(URI, True)]

    async def listen(_ctx: Any, _params: Any) -> str:
        await relay.unsubscribe(URI, cast(Connection, first))
        await relay.unsubscribe(URI, cast(Connection, second))
        assert backend.calls == [(URI, True)]  # the listen stream still holds it
        return "ended"

    params = types.SubscriptionsListenRequestParams(
        notifications=types.SubscriptionFilter(resource_subscriptions=[URI, "demo://unknown"])
    )
    assert await relay.listen_handler(listen)(None, params) == "ended"
    assert backend.calls == [(URI, True), (URI, False)]


async def test_an_ended_session_releases_its_subscriptions_and_updates_reach_the_others() -> None:
    relay, backend, spawned, gone, staying = await _two_subscribers()
    ((func, args),) = gone.teardown  # the session's teardown schedules the release as a task
    func(*args)
    ((drop, drop_args),) = spawned
    await drop(*drop_args)
    await relay.updated(URI)
    assert (gone.sent, staying.sent) == ([], [URI])
    assert backend.calls == [(URI, True)]
    await relay.unsubscribe(URI, cast(Connection, staying))
    assert backend.calls == [(URI, True), (URI, False)]


async def test_an_unknown_uri_is_refused_like_a_read() -> None:
    relay = _relay(FakeBackend(), [])
    with pytest.raises(MCPError, match="Unknown resource: demo://nope"):
        await relay.subscribe("demo://nope", cast(Connection, FakeConnection()))
