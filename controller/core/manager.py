"""The manager: owns the client, cache, applier and event recorder; runs controllers while leading.

Lifecycle of ``run()``:
1. serve ``/metrics`` and ``/healthz`` + ``/readyz`` (ready once every cache synced);
2. start the informers and wait for their first LIST;
3. with leader election, wait for the Lease; then start every controller's workers;
4. on SIGTERM/SIGINT (or ``stop()``): stop taking keys, let in-flight reconciles finish within the
   graceful shutdown timeout, release the Lease, stop informers and servers; exit code 0;
5. a leader that cannot renew stops its controllers at once and ``run()`` returns 1, so the process
   exits and a standby takes over.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import uuid
from dataclasses import dataclass, field

import structlog

from controller.core.apply import Applier
from controller.core.cache import Cache
from controller.core.client import KubeClient
from controller.core.controller import Controller, ControllerRunner
from controller.core.events import EventRecorder
from controller.core.informer import InformerSettings
from controller.core.leader import LeaderElectionConfig, LeaderElector
from controller.core.metrics import Metrics
from controller.core.probes import HttpServer, ProbeServer
from kube.service_account import service_account_namespace
from kube.transport import LazyKubeTransport, PoolSizes, Transport

log = structlog.get_logger("mcp-operator.manager")

EXIT_LEADERSHIP_LOST = 1


def default_leader_election_namespace() -> str:
    """POD_NAMESPACE, else the in-cluster service account's namespace, else ``default``."""
    return os.environ.get("POD_NAMESPACE") or service_account_namespace() or "default"


@dataclass
class ManagerOptions:
    """How the operator process runs; every field has a flag and an environment variable in main."""

    namespaces: list[str] | None = None
    """Namespaces to watch; None or empty watches all namespaces."""
    kubeconfig: str | None = None
    """Kubeconfig path; None means $KUBECONFIG, in-cluster, or ~/.kube/config."""
    metrics_bind_address: str = ":8080"
    """Where ``/metrics`` is served; ``0`` disables it."""
    health_probe_bind_address: str = ":8081"
    """Where ``/healthz`` and ``/readyz`` are served; ``0`` disables them."""
    leader_elect: bool = False
    """Hold a Lease so only one replica reconciles."""
    leader_election_namespace: str = field(default_factory=default_leader_election_namespace)
    leader_election_id: str = "mcp-operator-leader"
    """Name of the Lease."""
    identity: str = field(default_factory=lambda: f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}")
    """This replica's name in the Lease."""
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    workers: int = 2
    """Concurrent reconciles per controller (a controller may override it)."""
    qps: float = 20.0
    """Client-side request rate to the API server; 0 disables the limiter."""
    burst: int = 30
    api_connections: int = 100
    """Connections for API requests (reads and writes), apart from the watches' own."""
    watch_connections: int = 0
    """Connections for watches; 0 is one per watch (each watch holds its connection while it is open)."""
    resync_period: float = 10 * 3600.0
    """Replay every cached object to controllers this often (low priority); 0 disables."""
    graceful_shutdown_timeout: float = 30.0
    """How long in-flight reconciles may take to finish on shutdown."""
    cache_sync_timeout: float = 120.0
    """Give up (exit 1) when caches have not synced within this many seconds."""


class Manager:
    """Construct from :class:`ManagerOptions`, ``add_controller(...)``, then ``await run()``."""

    def __init__(
        self,
        options: ManagerOptions | None = None,
        *,
        transport: Transport | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.options = options or ManagerOptions()
        self.metrics = metrics or Metrics()
        opts = self.options
        pools = PoolSizes(requests=opts.api_connections, watches=opts.watch_connections)
        self.transport = transport or LazyKubeTransport(opts.kubeconfig, pools=pools)
        self.client = KubeClient(self.transport, qps=opts.qps, burst=opts.burst, metrics=self.metrics)
        self.cache = Cache(
            self.client, opts.namespaces or None, settings=InformerSettings(resync_period=opts.resync_period)
        )
        self.applier = Applier(self.client, self.cache)
        self.events = EventRecorder(self.client)
        self.runners: list[ControllerRunner] = []
        self.elector: LeaderElector | None = None
        if opts.leader_elect:
            self.elector = LeaderElector(
                self.client,
                LeaderElectionConfig(
                    namespace=opts.leader_election_namespace,
                    name=opts.leader_election_id,
                    identity=opts.identity,
                    lease_duration=opts.lease_duration,
                    renew_deadline=opts.renew_deadline,
                    retry_period=opts.retry_period,
                ),
            )
        self._stop = asyncio.Event()
        self._failed = False
        self.leading = asyncio.Event()
        self.metrics_server: HttpServer | None = None
        self.probe_server: ProbeServer | None = None

    def add_controller(self, controller: Controller) -> ControllerRunner:
        """Register a controller (its informers are created now, shared with every other controller)."""
        if any(r.name == controller.name for r in self.runners):
            raise ValueError(f"a controller named '{controller.name}' is already registered")
        runner = ControllerRunner(
            controller,
            cache=self.cache,
            applier=self.applier,
            events=self.events,
            client=self.client,
            metrics=self.metrics,
            workers=self.options.workers,
        )
        self.runners.append(runner)
        return runner

    def _on_cache_exit(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        log.error("informers stopped unexpectedly; shutting down", error=repr(error), exc_info=error)
        self._failed = True
        self._stop.set()

    def ready(self) -> bool:
        return self.cache.has_synced()

    def stop(self) -> None:
        """Ask ``run()`` to shut down gracefully (what SIGTERM does)."""
        self._stop.set()

    async def run(self, *, handle_signals: bool = True) -> int:
        """Run until stopped; 0 after a graceful shutdown, 1 when leadership or cache sync was lost."""
        loop = asyncio.get_running_loop()
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._stop.set)
        code = 0
        try:
            await self._start_servers()
            if isinstance(self.transport, LazyKubeTransport):
                await self.transport.load()
            cache_task = asyncio.create_task(self.cache.run(), name="cache")
            cache_task.add_done_callback(self._on_cache_exit)
            try:
                code = await self._run_with_cache()
                if self._failed:
                    code = 1
            finally:
                cache_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await cache_task
        finally:
            if handle_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
            await self._stop_servers()
            await self.client.close()
        log.info("manager stopped", exit_code=code)
        return code

    async def _run_with_cache(self) -> int:
        stop_wait = asyncio.create_task(self._stop.wait())
        try:
            synced = asyncio.create_task(self.cache.wait_synced(self.options.cache_sync_timeout))
            await asyncio.wait({synced, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            if self._stop.is_set():
                synced.cancel()
                return 0
            if not synced.result():
                log.error("caches did not sync in time", timeout=self.options.cache_sync_timeout)
                return 1
            log.info("caches synced", resources=[str(r) for r in self.cache.resources()])
            if self.elector is not None:
                acquire = asyncio.create_task(self.elector.acquire())
                await asyncio.wait({acquire, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                if self._stop.is_set():
                    acquire.cancel()
                    return 0
            return await self._lead(stop_wait)
        finally:
            stop_wait.cancel()

    async def _lead(self, stop_wait: asyncio.Task[bool]) -> int:
        self.leading.set()
        for runner in self.runners:
            runner.start()
        log.info("controllers started", controllers=[r.name for r in self.runners])
        lost: asyncio.Task[None] | None = None
        if self.elector is not None:
            lost = asyncio.create_task(self.elector.hold())
            await asyncio.wait({lost, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        else:
            await stop_wait
        if lost is not None and lost.done():
            log.error("leader election lost; stopping controllers without waiting")
            await asyncio.gather(*(runner.stop(grace=0) for runner in self.runners))
            return EXIT_LEADERSHIP_LOST
        if lost is not None:
            lost.cancel()
        grace = self.options.graceful_shutdown_timeout
        log.info("shutting down: waiting for in-flight reconciles", grace_seconds=grace)
        await asyncio.gather(*(runner.stop(grace=grace) for runner in self.runners))
        if self.elector is not None:
            await self.elector.release()
        return 0

    async def _start_servers(self) -> None:
        opts = self.options
        if opts.metrics_bind_address not in ("0", ""):
            self.metrics_server = HttpServer(
                opts.metrics_bind_address,
                {
                    "/metrics": lambda: (
                        200,
                        "text/plain; version=0.0.4; charset=utf-8",
                        self.metrics.render(),
                    )
                },
            )
            await self.metrics_server.start()
        if opts.health_probe_bind_address not in ("0", ""):
            self.probe_server = ProbeServer(opts.health_probe_bind_address, ready=self.ready)
            await self.probe_server.start()
        log.info(
            "serving",
            metrics=opts.metrics_bind_address,
            health=opts.health_probe_bind_address,
            namespaces=opts.namespaces or "all",
        )

    async def _stop_servers(self) -> None:
        for server in (self.metrics_server, self.probe_server):
            if server is not None:
                await server.stop()
