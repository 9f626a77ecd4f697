"""Session records in Redis: what a replica needs to continue a 2025-11-25 session it did not open.

A record is the handshake's outcome (negotiated version, the client's ``initialize`` params) and the
credential the session is bound to, as one JSON value under ``<keyPrefix>session:<id>`` with the
session idle timeout as its TTL; requests refresh the TTL (at most every quarter of it per replica).
Backend sessions are not in it: every replica keeps its own backend connections.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from .link import RedisLink, StoreUnavailableError

__all__ = ["SessionRecord", "SessionStore"]


@dataclass(frozen=True)
class SessionRecord:
    """One session as stored."""

    protocol_version: str
    client_params: dict[str, Any] | None
    owner: dict[str, Any] | None
    """The inbound credential's principal (client id, issuer, subject); None without inbound auth."""

    def dumps(self) -> bytes:
        data = {"v": self.protocol_version, "client": self.client_params, "owner": self.owner}
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def loads(cls, raw: bytes) -> SessionRecord | None:
        try:
            data = json.loads(raw)
            version = data["v"]
        except (ValueError, KeyError, TypeError):
            return None  # not ours, or from an incompatible release: as if absent
        if not isinstance(version, str):
            return None
        client, owner = data.get("client"), data.get("owner")
        return cls(
            version, client if isinstance(client, dict) else None, owner if isinstance(owner, dict) else None
        )


class SessionStore:
    """Save, load, refresh and forget session records (every failure is :class:`StoreUnavailableError`)."""

    def __init__(self, link: RedisLink, *, ttl_seconds: float, registry: CollectorRegistry | None) -> None:
        self.link = link
        self.ttl = max(1, int(ttl_seconds))
        counter = Counter(
            "mcp_sessions_shared",
            "Sessions through the shared store: saved at initialize, resumed from another replica, "
            "not found (404), kept local (store unreachable at initialize)",
            ["event"],
            registry=registry,
        )
        self.saved = counter.labels("saved")
        self.resumed = counter.labels("resumed")
        self.not_found = counter.labels("not_found")
        self.local_only = counter.labels("local_only")

    def _key(self, session_id: str) -> str:
        return self.link.key("session", session_id)

    async def save(self, session_id: str, record: SessionRecord) -> bool:
        """Store the record; False (the session stays this replica's) when Redis does not answer."""
        client = self.link.client
        try:
            await self.link.call(
                "session", lambda: client.set(self._key(session_id), record.dumps(), ex=self.ttl)
            )
        except StoreUnavailableError:
            self.local_only.inc()
            return False
        self.saved.inc()
        return True

    async def load(self, session_id: str) -> SessionRecord | None:
        """The stored record, or None (unknown, expired, or Redis not answering)."""
        client = self.link.client
        try:
            raw = await self.link.call("session", lambda: client.get(self._key(session_id)))
        except StoreUnavailableError:
            return None
        return SessionRecord.loads(raw) if isinstance(raw, bytes) else None

    async def refresh(self, session_id: str) -> None:
        """Restart the record's idle countdown (best effort: a failure only shortens it)."""
        client = self.link.client
        try:
            await self.link.call("session", lambda: client.expire(self._key(session_id), self.ttl))
        except StoreUnavailableError:
            return

    async def forget(self, session_id: str) -> None:
        """The client ended the session (DELETE): no replica may continue it."""
        client = self.link.client
        try:
            await self.link.call("session", lambda: client.delete(self._key(session_id)))
        except StoreUnavailableError:
            return  # the record expires with its TTL
