"""Client request headers the gateway forwards to every backend (``passthroughHeaders``, docs/vmcp.md).

The gateway's front captures the allowlisted headers of each request from its ASGI scope
(:func:`forwarding`, on the SDK path and the fast path) into a context variable that holds while the
request runs; every backend HTTP request sent from that task adds them: the messages of a streamable-HTTP
backend session (the SDK session's and the session era's raw leg's, through :class:`ForwardingWrites`,
as per-message headers the SDK's transport sends) and the 2026-07-28 raw leg's (:func:`add_to`). The
outbound credentials are set after them, so a client header never replaces a configured one; the
allowlist itself never holds a credential (:func:`api.auth_config.passthrough_refusal`). Where the
headers are a plain dict sent as they are (the 2026-07-28 leg's direct HTTP/1.1 pool), :func:`yield_to`
first drops a forwarded header the credentials set under another case.

Guarded by :data:`enabled` like tracing: a process that is not a gateway pays one boolean check.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import replace
from typing import Any

from mcp.shared.message import ClientMessageMetadata, SessionMessage

__all__ = ["ForwardingWrites", "add_to", "allowlist", "enable", "enabled", "forwarding", "yield_to"]

enabled = False
"""Whether this process forwards client headers (the gateway turns it on at start, :func:`enable`)."""
_OFF = nullcontext()
_forwarded: ContextVar[dict[str, str] | None] = ContextVar("passthrough_headers", default=None)


def enable() -> None:
    global enabled  # noqa: PLW0603 - one flag read on the hot path, set once at start (as tracing's)
    enabled = True


def allowlist(names: Iterable[str] | None) -> frozenset[bytes]:
    """The header names as an ASGI scope spells them (lower-case bytes)."""
    return frozenset(name.lower().encode("latin-1") for name in names or ())


def forwarding(scope: object, allowed: frozenset[bytes]) -> AbstractContextManager[object]:
    """While entered, backend requests of this task carry the ``allowed`` headers of the request ``scope``
    (several fields of one name joined with ``, ``)."""
    if not allowed:
        return _OFF
    headers = scope.get("headers") if isinstance(scope, dict) else None
    found: dict[str, str] = {}
    for key, value in headers or ():
        if key in allowed:
            name, text = key.decode("latin-1"), value.decode("latin-1")
            found[name] = f"{found[name]}, {text}" if name in found else text
    return _holding(found) if found else _OFF


@contextmanager
def _holding(found: dict[str, str]) -> Iterator[None]:
    token = _forwarded.set(found)
    try:
        yield
    finally:
        _forwarded.reset(token)


def add_to(headers: dict[str, str]) -> None:
    """Add the current request's forwarded headers to a backend request's ``headers`` (those already
    there, the gateway's own, win)."""
    found = _forwarded.get()
    if found:
        for name, value in found.items():
            headers.setdefault(name, value)


def yield_to(configured: dict[str, str], headers: dict[str, str]) -> None:
    """Drop from ``headers`` (a plain dict, spelled as it came) every name ``configured`` sets, whatever its
    case: the outbound credentials and ``headerForward`` win over a forwarded client header."""
    names = {name.lower() for name in configured}
    for name in [name for name in headers if name.lower() in names]:
        del headers[name]


class ForwardingWrites:
    """A backend session's write stream whose messages, sent while a front request is captured, carry its
    forwarded headers (the SDK's streamable-HTTP transport sends a message's metadata headers)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    async def send(self, item: SessionMessage) -> None:
        found = _forwarded.get()
        if found and isinstance(item, SessionMessage):
            metadata = item.metadata
            if metadata is None:
                item = replace(item, metadata=ClientMessageMetadata(headers=dict(found)))
            elif isinstance(metadata, ClientMessageMetadata):
                headers = dict(metadata.headers or {})
                add_to(headers)
                item = replace(item, metadata=replace(metadata, headers=headers))
        await self.stream.send(item)

    async def aclose(self) -> None:
        await self.stream.aclose()

    async def __aenter__(self) -> ForwardingWrites:
        await self.stream.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stream.__aexit__(*exc_info)
