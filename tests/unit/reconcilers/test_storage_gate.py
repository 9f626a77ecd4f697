"""The decision whether a workload's Redis connection must be checked before it rolls out, what a failed
check says, the Accepted=False it becomes, and the gate's backoff and memory (the network and the API
behind seams: a function for the check, a dict for the cache, a recorder for the Secret GET)."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import yaml

from api.scaling import SessionStorage
from controller.core import CONFIGMAP, SECRET, ObjectKey
from controller.reconcilers.redis_probe import CheckFailure
from controller.reconcilers.render import secret_env_name
from controller.reconcilers.storage_gate import (
    AUTH_FAILED,
    DATABASE_REFUSED,
    PASSWORD_NOT_FOUND,
    UNREACHABLE,
    Connection,
    StorageGate,
    connection_in,
    index_storage_secret,
    needs_check,
    refusal_for,
    wanted_connection,
)
from controller.reconcilers.storage_status import with_refusal

ADDRESS = "redis.cache.svc:6379"
REF = {"name": "redis", "key": "password"}
PASSWORD = "s3cret"
KEY = ObjectKey("team", "fetch")


def storage(**fields: Any) -> SessionStorage:
    return SessionStorage.model_validate({"provider": "redis", "address": ADDRESS, **fields})


def config_map(storage_block: dict[str, Any] | None, fmt: str = "json", **rest: Any) -> dict[str, Any]:
    config = {**rest, **({"sessionStorage": storage_block} if storage_block is not None else {})}
    text = json.dumps(config) if fmt == "json" else yaml.safe_dump(config)
    key = "proxy.json" if fmt == "json" else "vmcp.yaml"
    return {"kind": "ConfigMap", "metadata": {"name": "fetch-proxy"}, "data": {key: text}}


ENV = secret_env_name(storage(passwordRef=REF).password_ref)  # type: ignore[arg-type]
BLOCK = {"provider": "redis", "address": ADDRESS, "passwordRef": {"env": ENV}}


def test_the_wanted_connection_is_address_db_and_password_reference() -> None:
    assert wanted_connection(None) is None
    assert wanted_connection(SessionStorage.model_validate({"provider": "memory"})) is None
    assert wanted_connection(storage(db=3, passwordRef=REF)) == Connection(ADDRESS, 3, ENV)
    assert wanted_connection(storage()) == Connection(ADDRESS, 0, None)


def test_the_deployed_connection_is_read_from_either_config_file() -> None:
    for fmt in ("json", "yaml"):
        assert connection_in(config_map(BLOCK, fmt)["data"]) == Connection(ADDRESS, 0, ENV)
        assert connection_in(config_map({"provider": "memory"}, fmt)["data"]) is None
        assert connection_in(config_map(None, fmt)["data"]) is None
    assert connection_in({"proxy.json": "{not json"}) is None
    assert connection_in({}) is None


def test_only_a_new_or_changed_connection_is_checked() -> None:
    wanted = Connection(ADDRESS, 0, ENV)
    desired = config_map(BLOCK, backend="http://a")
    assert needs_check(wanted, None, desired)  # nothing rolled out yet
    assert not needs_check(None, None, desired)  # sessions in memory: nothing to check
    assert not needs_check(wanted, desired, desired)  # the steady state (unchanged data, not parsed)
    other_backend = config_map(BLOCK, backend="http://b")
    assert not needs_check(wanted, other_backend, desired)  # another change, the same connection
    memory = config_map({"provider": "memory"}, backend="http://a")
    assert needs_check(wanted, memory, desired)  # memory -> redis
    for changed in ({"address": "redis.other.svc:6379"}, {"db": 2}, {"passwordRef": {"env": "SECRET_X_1"}}):
        assert needs_check(wanted, config_map({**BLOCK, **changed}), desired), changed
    assert not needs_check(wanted, config_map({**BLOCK, "keyPrefix": "b:"}), desired)  # not the connection


def test_each_failure_names_its_field_and_never_the_password() -> None:
    tried, wait = "redis.cache.svc:6379", 1.0
    unreachable = refusal_for(CheckFailure("connect", "Connection refused"), storage(), tried, wait)
    assert (unreachable.reason, unreachable.field) == (UNREACHABLE, "spec.sessionStorage.address")
    assert unreachable.message.startswith(f"spec.sessionStorage.address: Redis at {ADDRESS} does not answer")
    assert (
        "(Connection refused; the operator tried redis.cache.svc:6379 with a 1s timeout)"
        in unreachable.message
    )

    wrong = CheckFailure("auth", "WRONGPASS invalid username-password pair or user is disabled.")
    refused = refusal_for(wrong, storage(passwordRef=REF), tried, wait)
    assert (refused.reason, refused.field) == (AUTH_FAILED, "spec.sessionStorage.passwordRef")
    assert "Secret 'redis' key 'password' (WRONGPASS invalid" in refused.message
    wants = refusal_for(CheckFailure("auth", "NOAUTH Authentication required."), storage(), tried, wait)
    assert (wants.reason, wants.field) == (AUTH_FAILED, "spec.sessionStorage.passwordRef")
    assert "wants a password (NOAUTH" in wants.message

    db = refusal_for(CheckFailure("select", "ERR DB index is out of range"), storage(db=9), tried, wait)
    assert (db.reason, db.field) == (DATABASE_REFUSED, "spec.sessionStorage.db")
    assert "refused SELECT 9 (ERR DB index is out of range)" in db.message


def test_a_refusal_is_accepted_false_with_one_event_and_a_stable_transition_time() -> None:
    def kind_status(previous: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str, str]]]:
        """What a kind's status function returns: Accepted=True (an Event when it was False before)."""
        was_false = any(
            c["type"] == "Accepted" and c["status"] == "False" for c in previous.get("conditions", [])
        )
        accepted = {
            "type": "Accepted",
            "status": "True",
            "reason": "Accepted",
            "message": "the spec is valid",
            "lastTransitionTime": "now" if was_false else "t0",
        }
        events = [("Normal", "Accepted", "the spec is valid")] if was_false else []
        return {"phase": "Pending", "message": "Deployment not created yet", "conditions": [accepted]}, events

    message = "spec.sessionStorage.address: Redis at x does not answer"
    first, events = with_refusal(*kind_status({}), {}, 2, reason=UNREACHABLE, message=message)
    accepted = first["conditions"][0]
    assert (accepted["status"], accepted["reason"], accepted["observedGeneration"]) == (
        "False",
        UNREACHABLE,
        2,
    )
    assert first["message"] == message and first["phase"] == "Pending"
    assert events == [("Warning", UNREACHABLE, message)]
    again, events = with_refusal(*kind_status(first), first, 2, reason=UNREACHABLE, message=message)
    assert again == first and events == []  # the same refusal on a retry: nothing to write, no Event


class Secrets:
    """The Secret GET seam: answers ``secret`` (as the API returns it) and counts reads."""

    def __init__(self, secret: dict[str, Any] | None) -> None:
        self.secret = secret
        self.reads = 0

    async def get(self, resource: Any, namespace: str | None, name: str, subresource: str = "") -> Any:
        self.reads += 1
        assert resource == SECRET and (namespace, name) == ("team", "redis")
        return self.secret


def secret(**data: str) -> dict[str, Any]:
    return {"data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}}


class Cache(dict[tuple[Any, str, str], Any]):
    def get(self, resource: Any, namespace: str | None, name: str) -> Any:  # type: ignore[override]
        return super().get((resource, namespace or "", name))


def test_the_gate_checks_once_backs_off_and_reads_exactly_the_referenced_key() -> None:
    calls: list[tuple[str, int, bytes | None, int]] = []
    answers: list[CheckFailure | None] = [CheckFailure("connect", "Connection refused")] * 5 + [None]

    async def check(
        host: str, port: int, wait: float, password: bytes | None, db: int
    ) -> CheckFailure | None:
        calls.append((host, port, password, db))
        return answers.pop(0)

    counted: list[str] = []
    gate = StorageGate(30.0, counted.append, check)
    cache, secrets = Cache(), Secrets(secret(password=PASSWORD))
    spec = storage(passwordRef=REF)
    desired = [config_map(BLOCK)]

    async def admit() -> Any:
        return await gate.admit(KEY, spec, desired, cache, secrets)  # type: ignore[arg-type]

    delays = [asyncio.run(admit()).retry_after for _ in range(5)]
    assert delays == [5.0, 10.0, 20.0, 30.0, 30.0]  # a sixth of the period, doubling up to it
    assert calls[0] == ("redis.cache.svc", 6379, PASSWORD.encode(), 0) and secrets.reads == 5
    admitted = asyncio.run(admit())
    assert admitted.refusal is None and admitted.checked and admitted.problem is None
    assert counted == ["unreachable"] * 5 + ["admitted"]
    # Checked once: until the cache shows the applied ConfigMap, and after, no further check or read.
    assert asyncio.run(admit()).checked is False
    cache[(CONFIGMAP, "team", "fetch-proxy")] = config_map(BLOCK)
    assert asyncio.run(admit()).checked is False and len(calls) == 6 and secrets.reads == 6


def test_a_missing_secret_or_key_is_refused_without_a_check() -> None:
    async def check(*args: Any) -> CheckFailure | None:
        raise AssertionError("no check without a password")

    gate, cache, secrets = StorageGate(30.0, lambda outcome: None, check), Cache(), Secrets(None)
    spec = storage(passwordRef=REF)
    missing = asyncio.run(gate.admit(KEY, spec, [config_map(BLOCK)], cache, secrets))  # type: ignore[arg-type]
    assert missing.refusal is not None and missing.refusal.reason == PASSWORD_NOT_FOUND
    assert missing.refusal.field == "spec.sessionStorage.passwordRef.name"
    secrets.secret = secret(other=PASSWORD)
    no_key = asyncio.run(gate.admit(KEY, spec, [config_map(BLOCK)], cache, secrets))  # type: ignore[arg-type]
    assert no_key.refusal is not None and no_key.refusal.field == "spec.sessionStorage.passwordRef.key"
    assert PASSWORD not in no_key.refusal.message and secrets.reads == 2


def test_the_password_secret_is_indexed_for_its_watch() -> None:
    obj = {"metadata": {"namespace": "team"}, "spec": {"sessionStorage": {"passwordRef": REF}}}
    assert index_storage_secret(obj) == ["team/redis"]
    assert index_storage_secret({"metadata": {"namespace": "team"}, "spec": {}}) == []
