"""The one place that performs HTTP to the API server: a transport with a single ``send`` method.

:class:`KubeTransport` sends over aiohttp sessions (one for requests, one for watches) configured from
:mod:`kube.kubeconfig` and hands back the raw response, so callers consume raw JSON and own
their watch loops. Tests can swap in any object with the same ``send`` method.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
import orjson

from kube.credentials import Connection
from kube.kubeconfig import load_connection

__all__ = [
    "KubeTransport",
    "LazyKubeTransport",
    "PoolSizes",
    "Request",
    "Response",
    "Transport",
    "TransportError",
    "decode_json",
    "encode_json",
]


@dataclass
class Request:
    """One API request; ``body`` is a JSON-able object or None."""

    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    body: Any = None
    content_type: str = "application/json"
    timeout: float | None = 60.0
    """Total seconds for a normal request; None for a watch (the caller bounds each line instead)."""
    watch: bool = False
    """A long-lived stream: sent over the watch pool, so open watches never hold a request's connection."""


class Response(Protocol):
    """What a transport returns: the status, headers and a body read whole or line by line."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    async def read(self) -> bytes: ...

    def lines(self) -> AsyncIterator[bytes]: ...

    def close(self) -> None: ...


class Transport(Protocol):
    """Sends requests to one API server."""

    host: str

    async def send(self, request: Request) -> Response: ...

    async def close(self) -> None: ...


class TransportError(Exception):
    """The request never got an HTTP answer (connection refused, reset, TLS failure, timeout)."""


class _AiohttpResponse:
    def __init__(self, raw: aiohttp.ClientResponse) -> None:
        self._raw = raw

    @property
    def status(self) -> int:
        return self._raw.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._raw.headers

    async def read(self) -> bytes:
        try:
            return await self._raw.read()
        except (aiohttp.ClientError, OSError) as exc:
            raise TransportError(f"reading the response failed: {exc!r}") from exc
        finally:
            self._raw.release()

    async def lines(self) -> AsyncIterator[bytes]:
        try:
            while True:
                line = await self._raw.content.readline()
                if not line:
                    return
                yield line
        except (aiohttp.ClientError, OSError) as exc:
            raise TransportError(f"the stream broke: {exc!r}") from exc

    def close(self) -> None:
        self._raw.close()


@dataclass(frozen=True)
class PoolSizes:
    """Connections to the API server. HTTP/1.1 holds a connection for as long as a watch is open, so
    watches get a pool of their own: an operator watching 14 kinds in 50 namespaces holds 700 watches,
    which in one shared pool of 100 left no connection for a single write (every write timed out)."""

    requests: int = 100
    """Connections for requests (reads and writes); at most this many are in flight at once."""
    watches: int = 0
    """Connections for watches; 0 is unbounded (one per open watch)."""


class KubeTransport:
    """HTTP to a kube-apiserver over two aiohttp sessions: one for requests, one for watches."""

    def __init__(self, connection: Connection, *, pools: PoolSizes | None = None) -> None:
        self._connection = connection
        self._pools = pools or PoolSizes()
        self._sessions: dict[bool, aiohttp.ClientSession] = {}
        self.base_url = connection.server
        self.host = self.base_url.split("://", 1)[-1]

    @classmethod
    async def from_kubeconfig(
        cls, kubeconfig: str | None = None, context: str | None = None, *, pools: PoolSizes | None = None
    ) -> KubeTransport:
        """Load ``kubeconfig`` (or $KUBECONFIG, or the in-cluster service account, or ~/.kube/config);
        :class:`kube.credentials.ConfigError` when there is none."""
        return cls(await load_connection(kubeconfig, context), pools=pools)

    def _client(self, watch: bool) -> aiohttp.ClientSession:
        session = self._sessions.get(watch)
        if session is None:
            limit = self._pools.watches if watch else self._pools.requests
            connector = aiohttp.TCPConnector(limit=limit, ssl=self._connection.ssl_context)
            session = aiohttp.ClientSession(connector=connector, json_serialize=json.dumps)
            self._sessions[watch] = session
        return session

    async def send(self, request: Request) -> Response:
        headers = {"Content-Type": request.content_type, "Accept": "application/json"}
        token = await self._connection.authorization()
        if token:
            headers["Authorization"] = token
        timeout = (
            aiohttp.ClientTimeout(total=request.timeout)
            if request.timeout is not None
            else aiohttp.ClientTimeout(total=None, sock_connect=30)
        )
        data = None if request.body is None else encode_json(request.body)
        try:
            raw = await self._client(request.watch).request(
                request.method,
                self.base_url + request.path,
                params=request.query or None,
                headers=headers,
                data=data,
                timeout=timeout,
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise TransportError(f"{request.method} {request.path}: {exc!r}") from exc
        return _AiohttpResponse(raw)

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()


def encode_json(value: Any) -> bytes:
    """Compact UTF-8 JSON. Not ``\\u`` escapes: the API server reads apply bodies as YAML, which refuses
    the surrogate-pair escapes ``json.dumps`` writes for characters outside the BMP (an emoji in an env
    value)."""
    return orjson.dumps(value)


def decode_json(data: bytes) -> dict[str, Any]:
    """Parse a JSON object body (an empty body is an empty object); ValueError when it is not one.

    Every response and watch event is decoded here: orjson, about 3x faster than ``json``."""
    if not data.strip():
        return {}
    value = orjson.loads(data)
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object from the API server, got {type(value).__name__}")
    return value


class LazyKubeTransport:
    """A :class:`KubeTransport` whose kubeconfig is loaded on the first request (lets a manager be
    built synchronously from options)."""

    def __init__(
        self, kubeconfig: str | None = None, context: str | None = None, *, pools: PoolSizes | None = None
    ) -> None:
        self._kubeconfig = kubeconfig
        self._context = context
        self._pools = pools
        self._inner: KubeTransport | None = None
        self._lock = asyncio.Lock()
        self.host = "unknown"

    async def load(self) -> KubeTransport:
        async with self._lock:
            if self._inner is None:
                self._inner = await KubeTransport.from_kubeconfig(
                    self._kubeconfig, self._context, pools=self._pools
                )
                self.host = self._inner.host
        return self._inner

    async def send(self, request: Request) -> Response:
        inner = self._inner or await self.load()
        return await inner.send(request)

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()
