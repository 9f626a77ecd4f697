"""Where the authorization server keeps its state: registered clients, pending sign-ins, codes, refresh
tokens and the upstream tokens of each sign-in.

Records are JSON objects under ``(kind, key)`` with a time to live. :class:`MemoryAuthStore` keeps them
in this process (lost on restart, not shared); :class:`RedisAuthStore` keeps them in Redis through the
data plane's one Redis layer (:class:`gateway.sessions_store.RedisLink`: bounded waits, metrics), so
every replica and a restarted process see them. ``take`` reads and deletes in one step: a code or a
refresh token is used at most once even when two requests race for it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, Protocol

from prometheus_client import CollectorRegistry
from redis.asyncio.sentinel import Sentinel

from api.auth_config import SecretValueSource
from api.authserver_config import AuthStorageConfig, RedisStorageConfig
from api.scaling_config import split_address
from gateway.auth.secrets import SecretReader
from gateway.sessions_store.link import RedisLink, StoreUnavailableError, redis_client

__all__ = ["AuthStore", "MemoryAuthStore", "RedisAuthStore", "StoreUnavailableError", "auth_store"]

Record = dict[str, Any]


class AuthStore(Protocol):
    """The storage seam; Redis failures surface as :class:`StoreUnavailableError`."""

    async def put(self, kind: str, key: str, record: Record, ttl: float) -> None: ...

    async def get(self, kind: str, key: str) -> Record | None: ...

    async def take(self, kind: str, key: str) -> Record | None: ...

    async def aclose(self) -> None: ...


class MemoryAuthStore:
    """This process's memory; expired records are dropped when met and on every hundredth write."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._records: dict[tuple[str, str], tuple[float, str]] = {}
        self._clock = clock
        self._writes = 0

    async def put(self, kind: str, key: str, record: Record, ttl: float) -> None:
        now = self._clock()
        self._records[(kind, key)] = (now + ttl, json.dumps(record))
        self._writes += 1
        if self._writes % 100 == 0:
            self._records = {k: v for k, v in self._records.items() if v[0] > now}

    async def get(self, kind: str, key: str) -> Record | None:
        entry = self._records.get((kind, key))
        if entry is None:
            return None
        if entry[0] <= self._clock():
            self._records.pop((kind, key), None)
            return None
        record: Record = json.loads(entry[1])
        return record

    async def take(self, kind: str, key: str) -> Record | None:
        record = await self.get(kind, key)
        self._records.pop((kind, key), None)
        return record

    async def aclose(self) -> None:
        self._records.clear()


class RedisAuthStore:
    """Records as JSON strings under ``<keyPrefix><kind>:<key>`` with the record's TTL."""

    def __init__(self, link: RedisLink) -> None:
        self.link = link

    async def put(self, kind: str, key: str, record: Record, ttl: float) -> None:
        client, name = self.link.client, self.link.key(kind, key)
        data = json.dumps(record, separators=(",", ":"))
        await self.link.call("auth", lambda: client.set(name, data, px=max(1, int(ttl * 1000))))

    async def get(self, kind: str, key: str) -> Record | None:
        client, name = self.link.client, self.link.key(kind, key)
        return _record(await self.link.call("auth", lambda: client.get(name)))

    async def take(self, kind: str, key: str) -> Record | None:
        client, name = self.link.client, self.link.key(kind, key)
        return _record(await self.link.call("auth", lambda: client.getdel(name)))

    async def aclose(self) -> None:
        await self.link.aclose()


def _record(raw: object) -> Record | None:
    if not isinstance(raw, bytes | str):
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None  # not ours: as if absent
    return value if isinstance(value, dict) else None


def _tls(config: RedisStorageConfig) -> dict[str, object]:
    """redis-py's TLS options: the server's certificate verified (by ``caCertRef``'s CAs when set)."""
    if not config.tls:
        return {}
    ca = _secret(config.ca_cert_ref, "authServer.storage.redis.caCertRef")
    return {"ssl": True, "ssl_cert_reqs": "required", "ssl_ca_data": ca}


def _secret(ref: SecretValueSource | None, field: str) -> str | None:
    return SecretReader(ref, field=field).read() if ref is not None else None


def redis_link(config: RedisStorageConfig, registry: CollectorRegistry | None) -> RedisLink:
    """The link to the configured Redis: one address, or the master that Sentinel names."""
    username = _secret(config.username_ref, "authServer.storage.redis.usernameRef")
    password = _secret(config.password_ref, "authServer.storage.redis.passwordRef")
    options: dict[str, object] = {"username": username, **_tls(config)}
    if config.address is not None:
        host, port = split_address(config.address)
        client = redis_client(host, port, db=config.db, timeout=config.timeout, password=password, **options)
    else:
        assert config.sentinel_master is not None  # the config model requires it
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            [split_address(address) for address in config.sentinel_addresses],
            socket_timeout=config.timeout,
            socket_connect_timeout=config.timeout,
        )
        client = sentinel.master_for(
            config.sentinel_master,
            db=config.db,
            password=password,
            socket_timeout=config.timeout,
            socket_connect_timeout=config.timeout,
            **options,  # type: ignore[arg-type]
        )
    return RedisLink(client, timeout=config.timeout, prefix=config.key_prefix, registry=registry)


def auth_store(config: AuthStorageConfig, registry: CollectorRegistry | None) -> AuthStore:
    """The store the configuration names."""
    if config.redis is None:
        return MemoryAuthStore()
    return RedisAuthStore(redis_link(config.redis, registry))
