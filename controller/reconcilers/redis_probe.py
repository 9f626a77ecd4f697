"""Whether a workload's Redis answers: the operator's one network seam besides the Kubernetes API.

The data-plane pods report Redis in their own metrics (``mcp_redis_up``), but the operator reads pods
only through the API, and the proxy pods hold no API credential to report anything there. So the
operator asks Redis itself: one ``PING`` per address, with the workload's command timeout, answered from
memory for a few seconds so that many workloads sharing one Redis (and concurrent reconciles) cost one
probe. Any reply counts as an answer (``-NOAUTH`` too: the operator never reads the password, whose
Secret it caches without values); a refused or reset connection, an unknown host or no reply within the
timeout does not. Nothing here writes to the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import time
from collections.abc import Callable, Coroutine
from typing import Any

from api.scaling_config import split_address

__all__ = ["FRESH_SECONDS", "RedisProbe", "ping_redis", "probe_host"]

FRESH_SECONDS = 2.0
"""How long one probe's answer stands for every workload that uses the same address."""

Ping = Callable[[str, int, float], Coroutine[Any, Any, str | None]]


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
        return exc.strerror or str(exc) or type(exc).__name__
    finally:
        if writer is not None:
            writer.close()
    return None if line[:1] in (b"+", b"-") else "the connection closed without a Redis reply"


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
