"""Sessions shared by the replicas of a proxy or gateway through Redis (docs/scaling.md)."""

from .link import RedisLink, StoreUnavailableError
from .recall import SessionRecall
from .store import SessionRecord, SessionStore

__all__ = ["RedisLink", "SessionRecall", "SessionRecord", "SessionStore", "StoreUnavailableError"]
