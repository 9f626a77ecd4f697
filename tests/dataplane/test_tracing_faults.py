"""A collector that is unreachable, on a wrong port, silent, or answering 500 never slows or breaks MCP
traffic: spans are dropped and counted in ``mcp_tracing_spans_dropped_total``, and the process logs one
warning per interval, not one per span or batch."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import pytest

from tests.dataplane.test_tracing import call, traceparent
from tests.support.data_plane import data_plane
from tests.support.gateway_processes import wait_until
from tests.support.otlp import http_receiver, otlp_env
from tests.support.processes import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

EXPORT_TIMEOUT_MS = 4000
"""Long enough that an export on the request's path would show in every call's time."""
CALLS = 40
WARNING = "spans could not be exported"


@contextmanager
def silent_collector() -> Iterator[str]:
    """A TCP port that accepts connections and never answers (a hung collector)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


@contextmanager
def collector(fault: str) -> Iterator[str]:
    if fault == "wrong port":
        yield f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused
    elif fault == "unreachable host":
        yield "http://collector.invalid:4318"  # the name does not resolve
    elif fault == "silent":
        with silent_collector() as endpoint:
            yield endpoint
    else:
        with http_receiver() as (receiver, endpoint):
            receiver.status = 500
            yield endpoint


def sample(metrics: str, series: str) -> float:
    """The value of ``series`` (name and labels as /metrics writes them) in a /metrics text; 0 if absent."""
    prefix = f"{series} "
    return sum(float(line[len(prefix) :]) for line in metrics.splitlines() if line.startswith(prefix))


def dropped(metrics: str, reason: str) -> float:
    return sample(metrics, f'mcp_tracing_spans_dropped_total{{reason="{reason}"}}')


async def assert_calls_never_wait_for_export(url: str, calls: int = CALLS) -> None:
    """``calls`` tools/call through ``url`` all answer right, none near the export timeout."""
    slowest = 0.0
    for index in range(calls):
        started = time.monotonic()
        reply = await call(url, traceparent()[2], name="add", arguments={"a": index, "b": 1})
        slowest = max(slowest, time.monotonic() - started)
        assert str(index + 1) in str(reply)
    assert slowest < EXPORT_TIMEOUT_MS / 1000 / 2, f"a call took {slowest:.2f}s: export is on its path"


def assert_one_warning(log: Path, text: str) -> None:
    """``text`` is logged once (one warning per interval, not one per item or batch)."""

    def warnings() -> list[str]:
        return [line for line in log.read_text().splitlines() if text in line]

    wait_until(warnings, timeout=30)
    assert len(warnings()) == 1, warnings()


@pytest.mark.parametrize("fault", ["wrong port", "unreachable host", "silent", "answers 500"])
async def test_a_broken_collector_never_slows_or_breaks_calls(tmp_path: Path, fault: str) -> None:
    with collector(fault) as endpoint:
        env = otlp_env(
            endpoint, OTEL_EXPORTER_OTLP_TIMEOUT=str(EXPORT_TIMEOUT_MS), OTEL_BSP_MAX_QUEUE_SIZE="64"
        )
        with data_plane(tmp_path, env) as plane:
            await assert_calls_never_wait_for_export(plane.proxy_url)

            def counted() -> float:
                metrics = httpx2.get(f"{plane.proxy_url}/metrics").text
                return dropped(metrics, "export_failed") + dropped(metrics, "queue_full")

            # Each call makes two spans (request, backend hop): all are dropped, none is exported.
            wait_until(lambda: counted() >= 2 * CALLS * (0.5 if fault == "silent" else 1), timeout=60)
            assert_one_warning(plane.proxy.log, WARNING)
