"""A new or changed Redis connection rolls out only once Redis has taken the pods' own handshake.

A workload's pods connect to ``spec.sessionStorage`` with ``AUTH`` (the referenced Secret key's value) and
``SELECT`` of its database. A spec that points them at a Redis that does not answer, or that refuses the
password, would roll every pod onto a store it cannot use; so before a *new or changed* connection is
applied, the operator makes that handshake itself (:func:`~controller.reconcilers.redis_probe.check_redis`).
Refused: ``Accepted=False`` naming the field, nothing applied (the pods keep what they run), and another
try after a backoff (a sixth of the recheck period, doubling up to it), sooner when the spec or the Secret
changes (both are watched).

What the pods already run is never checked again: the connection in the workload's cached config
ConfigMap is the one that rolled out, and a Redis that goes away later only turns
``SessionStorageReachable`` False (``storage_status``); one outage never blocks or reverts a running
workload. Comparing with the ConfigMap (rather than remembering past checks) also holds across operator
restarts and upgrades. A check that passed is remembered for the workload, so the reconciles that follow
it (before the cache shows the applied ConfigMap) do not check again.

The password is the one value the operator reads that its cache does not hold (the cache keeps Secrets
without values, by design): one GET of exactly the referenced Secret, only when a check runs; the value
lives in this check's locals and is never logged, stored, written to status, Events or ConfigMaps.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import yaml

from api.common import SecretKeyRef
from api.scaling import SessionStorage
from api.scaling_config import split_address
from controller.core import CONFIGMAP, SECRET, Cache, ObjectKey, Resource, Watch
from controller.core.ratelimit import ItemExponentialBackoff
from controller.reconcilers.children import JSON
from controller.reconcilers.redis_probe import CheckFailure, check_redis, probe_host
from controller.reconcilers.refs import index_watch, strip_secret_values
from controller.reconcilers.render import secret_env_name
from controller.reconcilers.storage_status import COMMAND_TIMEOUT, DOWN_RECHECK_FRACTION

__all__ = [
    "AUTH_FAILED",
    "DATABASE_REFUSED",
    "OUTCOMES",
    "PASSWORD_NOT_FOUND",
    "UNREACHABLE",
    "Admission",
    "Connection",
    "Refusal",
    "StorageGate",
    "connection_in",
    "needs_check",
    "refusal_for",
    "storage_secret_watch",
]

FIELD = "spec.sessionStorage"
STORAGE_SECRET_INDEX = "ref:session-storage-secret"
UNREACHABLE = "SessionStorageUnreachable"
AUTH_FAILED = "SessionStorageAuthFailed"
DATABASE_REFUSED = "SessionStorageDatabaseRefused"
PASSWORD_NOT_FOUND = "SessionStoragePasswordNotFound"
OUTCOMES = {
    None: "admitted",
    UNREACHABLE: "unreachable",
    AUTH_FAILED: "auth_failed",
    DATABASE_REFUSED: "database_refused",
    PASSWORD_NOT_FOUND: "password_not_found",
}
"""The ``outcome`` label of ``mcp_operator_session_storage_checks_total`` by refusal reason."""

Check = Callable[[str, int, float, bytes | None, int], Coroutine[Any, Any, CheckFailure | None]]


class SecretGetter(Protocol):
    """The one live read of the check (the API client of the reconcile context)."""

    async def get(
        self, resource: Resource, namespace: str | None, name: str, subresource: str = ""
    ) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class Connection:
    """What a pod's Redis connection is made of, as far as a check can tell it apart."""

    address: str
    db: int
    password_env: str | None
    """The environment variable the pods read the password from: one name per (Secret, key)."""


def wanted_connection(storage: SessionStorage | None) -> Connection | None:
    """The connection ``spec.sessionStorage`` asks for (None: sessions in memory)."""
    if storage is None or storage.provider != "redis" or not storage.address:
        return None
    env = secret_env_name(storage.password_ref) if storage.password_ref is not None else None
    return Connection(storage.address, storage.db or 0, env)


def connection_in(data: Mapping[str, Any]) -> Connection | None:
    """The connection a rendered config ConfigMap's ``data`` gives the pods (its one file: the proxy's JSON
    or the gateway's YAML, both with a top-level ``sessionStorage``); None for memory or no config."""
    for text in data.values():
        try:
            config = json.loads(text) if str(text).lstrip().startswith("{") else yaml.safe_load(str(text))
        except (ValueError, yaml.YAMLError):
            return None
        storage = config.get("sessionStorage") if isinstance(config, dict) else None
        if not isinstance(storage, dict) or storage.get("provider") != "redis" or not storage.get("address"):
            return None
        ref = storage.get("passwordRef")
        env = ref.get("env") if isinstance(ref, dict) else None
        return Connection(str(storage["address"]), int(storage.get("db") or 0), str(env) if env else None)
    return None


def needs_check(wanted: Connection | None, cached: JSON | None, desired: JSON | None) -> bool:
    """Whether applying ``desired`` (the workload's config ConfigMap) gives its pods a Redis connection
    they do not run yet: ``cached`` is the ConfigMap as it is (None: not created). Unchanged data answers
    without parsing (the steady state)."""
    if wanted is None:
        return False
    if cached is None or desired is None:
        return True
    before, after = cached.get("data") or {}, desired.get("data") or {}
    return before != after and connection_in(before) != connection_in(after)


@dataclass(frozen=True)
class Refusal:
    """Why a connection is not rolled out: the ``Accepted=False`` reason and a message naming the field."""

    reason: str
    field: str
    message: str


def refusal_for(failure: CheckFailure, storage: SessionStorage, tried: str, wait: float) -> Refusal:
    """The refusal of a failed check of ``storage`` (``tried``: the ``host:port`` the operator dialled)."""
    address, db, ref = storage.address, storage.db or 0, storage.password_ref
    held = " the workload keeps what it runs; retried with backoff"
    if failure.stage == "auth" and ref is None:
        return Refusal(
            AUTH_FAILED,
            f"{FIELD}.passwordRef",
            f"{FIELD}.passwordRef: Redis at {address} wants a password ({failure.detail}); set passwordRef "
            f"to the Secret key that holds it;{held}",
        )
    if failure.stage == "auth" and ref is not None:
        return Refusal(
            AUTH_FAILED,
            f"{FIELD}.passwordRef",
            f"{FIELD}.passwordRef: Redis at {address} refused the password in Secret '{ref.name}' key "
            f"'{ref.key}' ({failure.detail}); put the right password in that key or point passwordRef at "
            f"the key that holds it;{held}",
        )
    if failure.stage == "select":
        return Refusal(
            DATABASE_REFUSED,
            f"{FIELD}.db",
            f"{FIELD}.db: Redis at {address} refused SELECT {db} ({failure.detail}); use a database number "
            f"that server has;{held}",
        )
    return Refusal(
        UNREACHABLE,
        f"{FIELD}.address",
        f"{FIELD}.address: Redis at {address} does not answer ({failure.detail}; the operator tried {tried} "
        f"with a {wait:g}s timeout); check the address, that Redis runs and that a NetworkPolicy admits "
        f"the operator;{held}",
    )


def password_in(secret: JSON | None, namespace: str, ref: SecretKeyRef) -> bytes | Refusal:
    """The value of ``ref``'s key in ``secret`` (as the API returns it), or why there is none."""
    if secret is None:
        return Refusal(
            PASSWORD_NOT_FOUND,
            f"{FIELD}.passwordRef.name",
            f"{FIELD}.passwordRef.name: Secret '{ref.name}' does not exist in namespace '{namespace}'; "
            "create it with the Redis password",
        )
    encoded = (secret.get("data") or {}).get(ref.key)
    try:
        if isinstance(encoded, str):
            return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        pass
    return Refusal(
        PASSWORD_NOT_FOUND,
        f"{FIELD}.passwordRef.key",
        f"{FIELD}.passwordRef.key: Secret '{ref.name}' has no key '{ref.key}'; add the Redis password "
        "under that key or fix the key",
    )


@dataclass(frozen=True)
class Admission:
    """What the gate decided for one reconcile."""

    refusal: Refusal | None = None
    """Why the children are not applied (None: apply them)."""
    checked: bool = False
    """Whether a check reached the network (then ``problem`` says whether Redis answered at all)."""
    problem: str | None = None
    """Why Redis did not answer the check (None: it answered, perhaps with a refusal)."""
    retry_after: float | None = None
    """When to try a refused connection again."""


class StorageGate:
    """The check of new and changed connections of one workload kind, with its backoff (``check`` is
    the network seam: tests pass a function)."""

    def __init__(self, recheck: float, counted: Callable[[str], None], check: Check = check_redis) -> None:
        self._check = check
        self._counted = counted
        # The first retry after a sixth of the recheck period (as the reachability probe while Redis is
        # down), then doubling up to the period itself: a Redis created with the workload is found within
        # seconds, one that stays away costs one check per period.
        self._backoff = ItemExponentialBackoff(recheck / DOWN_RECHECK_FRACTION, recheck)
        self._admitted: dict[ObjectKey, Connection] = {}
        self.wait = COMMAND_TIMEOUT
        """How long each step of the check waits (the pods' command timeout)."""

    def forget(self, key: ObjectKey) -> None:
        """The workload is gone (or back in memory): drop what was remembered of it."""
        self._admitted.pop(key, None)
        self._backoff.forget(key)

    async def admit(
        self,
        key: ObjectKey,
        storage: SessionStorage | None,
        desired: list[JSON],
        cache: Cache,
        client: SecretGetter,
    ) -> Admission:
        """Whether ``desired`` may be applied as far as its Redis connection goes."""
        wanted = wanted_connection(storage)
        if storage is None or wanted is None:
            self.forget(key)
            return Admission()
        config = next((obj for obj in desired if obj.get("kind") == CONFIGMAP.kind), None)
        cached = cache.get(CONFIGMAP, key.namespace, config["metadata"]["name"]) if config else None
        if not needs_check(wanted, cached, config) or self._admitted.get(key) == wanted:
            self._backoff.forget(key)
            return Admission()
        admission = await self._checked(key.namespace, storage, client)
        self._counted(OUTCOMES[admission.refusal.reason if admission.refusal else None])
        if admission.refusal is None:
            self._admitted[key] = wanted
            self._backoff.forget(key)
            return admission
        return Admission(admission.refusal, admission.checked, admission.problem, self._backoff.when(key))

    async def _checked(self, namespace: str, storage: SessionStorage, client: SecretGetter) -> Admission:
        password: bytes | None = None
        ref = storage.password_ref
        if ref is not None:
            # A live read, not the cache: the cache holds no values, and a Secret created with the
            # workload may not be in it yet.
            found = password_in(await client.get(SECRET, namespace, ref.name), namespace, ref)
            if isinstance(found, Refusal):
                return Admission(found)
            password = found
        host, port = split_address(storage.address or "")
        target = probe_host(host, namespace)
        failure = await self._check(target, port, self.wait, password, storage.db or 0)
        del password  # the value is needed for the handshake only
        if failure is None:
            return Admission(checked=True)
        problem = failure.detail if failure.stage == "connect" else None
        refusal = refusal_for(failure, storage, f"{target}:{port}", self.wait)
        return Admission(refusal, checked=True, problem=problem)


def index_storage_secret(obj: JSON) -> list[str]:
    """``namespace/name`` of the Secret holding a workload's Redis password (every workload kind has
    ``spec.sessionStorage``)."""
    storage = (obj.get("spec") or {}).get("sessionStorage")
    ref = storage.get("passwordRef") if isinstance(storage, dict) else None
    name = ref.get("name") if isinstance(ref, dict) else None
    return [f"{(obj.get('metadata') or {}).get('namespace', '')}/{name}"] if isinstance(name, str) else []


def storage_secret_watch(cache: Cache, resource: Resource) -> Watch:
    """Secret events enqueue the ``resource`` workloads whose Redis password it holds: a refused password
    that is fixed rolls out at once, not at the next retry. Secrets are cached without values."""
    cache.add_index(resource, STORAGE_SECRET_INDEX, index_storage_secret)
    cache.set_transform(SECRET, strip_secret_values)
    return index_watch(cache, SECRET, resource, STORAGE_SECRET_INDEX)
