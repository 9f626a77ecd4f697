"""Whether a workload's Redis answers: the operator's one network seam besides the Kubernetes API.

The data-plane pods report Redis in their own metrics (``mcp_redis_up``), but the operator reads pods
only through the API, and the proxy pods hold no API credential to report anything there. So the
operator asks Redis itself: one ``PING`` per address, with the workload's command timeout, answered from
memory for a few seconds so that many workloads sharing one Redis (and concurrent reconciles) cost one
probe. Any reply counts as an answer (``-NOAUTH`` too: this periodic probe needs no password, so it
needs no Secret); a refused or reset connection, an unknown host or no reply within the timeout does not.

A new or changed connection is checked once more thoroughly before it rolls out (:func:`check_redis`,
used by :mod:`~controller.reconcilers.storage_gate`): the pods' own handshake (``AUTH`` with the
password, ``SELECT`` of the database) and a ``PING``. Nothing here writes to the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal

from api.scaling_config import split_address

__all__ = ["FRESH_SECONDS", "CheckFailure", "RedisProbe", "check_redis", "ping_redis", "probe_host"]

FRESH_SECONDS = 2.0
"""How long one probe's answer stands for every workload that uses the same address."""

Ping = Callable[[str, int, float], Coroutine[Any, Any, str | None]]


def connection_error(exc: OSError) -> str:
    """What a failed connection met, as a person reads it: ``Connection refused`` (asyncio words it
    ``Connect call failed (address)``), ``Name or service not known``."""
    if not isinstance(exc, socket.gaierror) and exc.errno is not None and exc.errno > 0:
        return os.strerror(exc.errno)
    return exc.strerror or str(exc) or type(exc).__name__


async def ping_redis(host: str, port: int, wait: float) -> str | None:
    """None when Redis at ``host:port`` answers ``PING`` within ``wait`` seconds, else why not."""
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(wait):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(b"PING\r\n")
            await writer.drain()
            line = await reader.readline()
    except TimeoutError:
        return f"no answer within {wait:g}s"
    except OSError as exc:
        return connection_error(exc)
    finally:
        if writer is not None:
            writer.close()
    return None if line[:1] in (b"+", b"-") else "the connection closed without a Redis reply"


Stage = Literal["connect", "auth", "select", "ping"]


@dataclass(frozen=True)
class CheckFailure:
    """Where :func:`check_redis` stopped: ``connect`` (no Redis answered), ``auth`` (the password was
    refused, or Redis wants one and none was given), ``select`` (the database was refused) or ``ping``;
    ``detail`` is what the connection met or Redis's error text, never the password."""

    stage: Stage
    detail: str


def _command(*parts: bytes) -> bytes:
    """One command in RESP (bulk strings: a password may hold any byte)."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        out.append(b"$%d\r\n%s\r\n" % (len(part), part))
    return b"".join(out)


async def check_redis(
    host: str, port: int, wait: float, password: bytes | None, db: int
) -> CheckFailure | None:
    """None when Redis at ``host:port`` takes the pods' handshake (``AUTH password`` when one is given,
    ``SELECT db``) and answers ``PING``, each step within ``wait`` seconds; else where and why it stopped."""
    steps: list[tuple[Stage, bytes]] = []
    if password is not None:
        steps.append(("auth", _command(b"AUTH", password)))
    steps += [("select", _command(b"SELECT", str(db).encode())), ("ping", _command(b"PING"))]
    writer: asyncio.StreamWriter | None = None
    stage: Stage = "connect"
    try:
        async with asyncio.timeout(wait):
            reader, writer = await asyncio.open_connection(host, port)
        for stage, command in steps:
            async with asyncio.timeout(wait):
                writer.write(command)
                await writer.drain()
                line = await reader.readline()
            if line[:1] == b"-":
                return _refused(stage, line, password)
            if line[:1] != b"+":
                return CheckFailure("connect", "the connection closed without a Redis reply")
    except TimeoutError:
        return CheckFailure("connect", f"no answer within {wait:g}s")
    except OSError as exc:
        return CheckFailure("connect", connection_error(exc))
    finally:
        if writer is not None:
            writer.close()
    return None


def _refused(stage: Stage, line: bytes, password: bytes | None) -> CheckFailure:
    """Redis's error reply to ``stage``, without the password. ``-NOAUTH`` (to any command) means Redis
    wants a password that was not given: an authentication failure wherever it comes."""
    text = line[1:].decode("utf-8", "replace").strip()
    if password:
        text = text.replace(password.decode("utf-8", "replace"), "***")
    return CheckFailure("auth" if text.startswith("NOAUTH") else stage, text)


def probe_host(host: str, namespace: str) -> str:
    """The name the operator resolves for ``host`` as the workload's pods would: a single-label name
    (``redis``) is a Service of the workload's namespace, reached from the operator's own namespace as
    ``redis.<namespace>.svc``; dotted names, IPs and ``localhost`` resolve the same from anywhere."""
    if "." in host or host == "localhost":
        return host
    with contextlib.suppress(ValueError):
        ipaddress.ip_address(host)
        return host
    return f"{host}.{namespace}.svc"


class RedisProbe:
    """Probes Redis addresses, sharing answers for :data:`FRESH_SECONDS` and concurrent probes of one
    address (``ping`` is the seam: tests pass a function)."""

    def __init__(self, ping: Ping = ping_redis, clock: Callable[[], float] = time.monotonic) -> None:
        self._ping = ping
        self._clock = clock
        self._answers: dict[tuple[str, int, float], tuple[float, str | None]] = {}
        self._in_flight: dict[tuple[str, int, float], asyncio.Task[str | None]] = {}

    async def problem(self, address: str, namespace: str, wait: float) -> str | None:
        """None when Redis at ``address`` (a workload's ``host:port``) answers, else what went wrong."""
        host, port = split_address(address)
        target = (probe_host(host, namespace), port, wait)
        answered = self._answers.get(target)
        if answered is not None and self._clock() - answered[0] < FRESH_SECONDS:
            return answered[1]
        task = self._in_flight.get(target)
        if task is None:
            task = asyncio.create_task(self._ping(*target), name=f"redis-probe {target[0]}:{port}")
            self._in_flight[target] = task
            task.add_done_callback(lambda _: self._in_flight.pop(target, None))
        result = await asyncio.shield(task)
        self._answers[target] = (self._clock(), result)
        return result
