"""The OTLP metrics export collects the registries on the app's event loop while the app runs (as a
/metrics scrape does), so collectors reading the gateway's state never run beside it in another thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import anyio.to_thread
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.applications import Starlette

from gateway.observability import start_metrics_export

ENV = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_METRIC_EXPORT_INTERVAL": "3600000"}


class Where(Collector):
    """Records the thread each collection runs in."""

    def __init__(self) -> None:
        self.threads: list[int] = []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        self.threads.append(threading.get_ident())
        yield GaugeMetricFamily("probe", "where collections run", value=1.0)


async def test_collections_run_on_the_apps_loop_while_it_serves() -> None:
    registry, where, app = CollectorRegistry(), Where(), Starlette()
    registry.register(where)
    assert start_metrics_export("fetch", "stdio", app, registry, env={}) is None, "off without an endpoint"
    export = start_metrics_export("fetch", "stdio", app, registry, env=ENV)
    assert export is not None
    sent: list[object] = []
    export.send = lambda request: sent.append(request) or True
    loop_thread = threading.get_ident()
    async with app.router.lifespan_context(app):
        assert export.loop is not None
        assert await anyio.to_thread.run_sync(export.export_once)  # from another thread, as the export's
    assert where.threads == [loop_thread], "collected on the loop, not in the exporting thread"
    assert export.loop is None
    assert await anyio.to_thread.run_sync(export.export_once)
    assert where.threads[-1] != loop_thread, "once the app has stopped, in the exporting thread"
    export.shutdown()
    assert len(sent) == 3, "two exports and the last totals at shutdown"
