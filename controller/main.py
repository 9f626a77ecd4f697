"""``mcp-operator run``: the operator process.

Flags follow controller-runtime's names where one exists; each has an environment-variable twin.
The process configures JSON logging, builds the generic manager, lets ``controller.reconcilers``
register the MCP controllers, and runs until SIGTERM / Ctrl-C (exit 0) or lost leadership (exit 1).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os

import structlog

import controller.reconcilers
from controller.core.logs import configure_logging
from controller.core.manager import Manager, ManagerOptions, default_leader_election_namespace
from kube.credentials import ConfigError

EXIT_CONFIG_ERROR = 2
"""Exit code when the kubeconfig or in-cluster credentials are missing or invalid."""


def parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got '{value}'")


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got '{value}'")
    return number


def non_negative_float(value: str) -> float:
    number = float(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got '{value}'")
    return number


def split_namespaces(values: list[str]) -> list[str]:
    """``--namespace a --namespace b,c`` -> ``[a, b, c]``; empty means all namespaces."""
    return sorted({name.strip() for value in values for name in value.split(",") if name.strip()})


def parse_args(argv: list[str]) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="mcp-operator run", description="Run the mcp-operator controller.")
    parser.add_argument(
        "--kubeconfig",
        default=env("KUBECONFIG"),
        help="kubeconfig file (env KUBECONFIG; default: in-cluster config)",
    )
    parser.add_argument(
        "--namespace",
        action="append",
        default=None,
        help="namespace to watch; repeat or comma-separate for several (env WATCH_NAMESPACE, "
        "comma-separated; default: all namespaces)",
    )
    parser.add_argument(
        "--metrics-bind-address",
        default=env("METRICS_BIND_ADDRESS", ":8080"),
        help="address for /metrics (env METRICS_BIND_ADDRESS, default :8080; 0 disables)",
    )
    parser.add_argument(
        "--leader-elect",
        default=env("LEADER_ELECT", "false"),
        type=parse_bool,
        help="use a Lease so only one replica reconciles (env LEADER_ELECT, default false)",
    )
    parser.add_argument(
        "--leader-election-namespace",
        default=env("LEADER_ELECTION_NAMESPACE") or default_leader_election_namespace(),
        help="namespace of the leader Lease (env LEADER_ELECTION_NAMESPACE; default: POD_NAMESPACE, "
        "the in-cluster namespace, or 'default')",
    )
    parser.add_argument(
        "--leader-election-id",
        default=env("LEADER_ELECTION_ID", "mcp-operator-leader"),
        help="name of the leader Lease (env LEADER_ELECTION_ID, default mcp-operator-leader)",
    )
    parser.add_argument(
        "--health-probe-bind-address",
        default=env("HEALTH_PROBE_BIND_ADDRESS", ":8081"),
        help="address for /healthz and /readyz (env HEALTH_PROBE_BIND_ADDRESS, default :8081)",
    )
    parser.add_argument(
        "--workers",
        default=env("WORKERS", "2"),
        type=positive_int,
        help="concurrent reconciles per controller (env WORKERS, default 2)",
    )
    parser.add_argument(
        "--kube-api-qps",
        default=env("KUBE_API_QPS", "20"),
        type=non_negative_float,
        help="client-side requests per second to the API server, 0 = unlimited "
        "(env KUBE_API_QPS, default 20)",
    )
    parser.add_argument(
        "--kube-api-burst",
        default=env("KUBE_API_BURST", "30"),
        type=positive_int,
        help="client-side request burst (env KUBE_API_BURST, default 30)",
    )
    parser.add_argument(
        "--resync-period",
        default=env("RESYNC_PERIOD", "36000"),
        type=non_negative_float,
        help="seconds between full resyncs of every cached object, 0 disables "
        "(env RESYNC_PERIOD, default 10 h)",
    )
    parser.add_argument(
        "--graceful-shutdown-timeout",
        default=env("GRACEFUL_SHUTDOWN_TIMEOUT", "30"),
        type=non_negative_float,
        help="seconds in-flight reconciles may take on shutdown (env GRACEFUL_SHUTDOWN_TIMEOUT, default 30)",
    )
    parser.add_argument(
        "--log-level",
        default=env("LOG_LEVEL", "info"),
        choices=["debug", "info", "warning", "error"],
        help="log level (env LOG_LEVEL)",
    )
    parser.add_argument(
        "--log-format",
        default=env("LOG_FORMAT", "json"),
        choices=["json", "console"],
        help="log format (env LOG_FORMAT)",
    )
    args = parser.parse_args(argv)
    raw = args.namespace if args.namespace is not None else [env("WATCH_NAMESPACE", "")]
    args.namespace = split_namespaces(raw)
    return args


def options_from(args: argparse.Namespace) -> ManagerOptions:
    return ManagerOptions(
        namespaces=args.namespace or None,
        kubeconfig=args.kubeconfig,
        metrics_bind_address=args.metrics_bind_address,
        health_probe_bind_address=args.health_probe_bind_address,
        leader_elect=args.leader_elect,
        leader_election_namespace=args.leader_election_namespace,
        leader_election_id=args.leader_election_id,
        workers=args.workers,
        qps=args.kube_api_qps,
        burst=args.kube_api_burst,
        resync_period=args.resync_period,
        graceful_shutdown_timeout=args.graceful_shutdown_timeout,
    )


async def serve(args: argparse.Namespace) -> int:
    log = structlog.get_logger("mcp-operator")
    manager = Manager(options_from(args))
    controller.reconcilers.register(manager)
    log.info(
        "operator started",
        pid=os.getpid(),
        health=args.health_probe_bind_address,
        metrics=args.metrics_bind_address,
        leader_elect=args.leader_elect,
        controllers=[runner.name for runner in manager.runners],
    )
    try:
        code = await manager.run()
    except ConfigError as exc:
        log.error("no Kubernetes API to talk to", error=str(exc))
        return EXIT_CONFIG_ERROR
    log.info("stopped", exit_code=code)
    return code


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The operator's event loop: uvloop where it is installed (every platform but Windows).

    Besides less CPU per request, it keeps connections small: asyncio's TLS transport zero-fills a
    256 KiB read buffer per connection, so the ~100 pooled connections of a busy operator cost ~30 MB
    of resident memory that never goes back (uvloop's buffer is only touched as far as data arrives).
    """
    try:
        import uvloop  # noqa: PLC0415
    except ImportError:  # pragma: no cover - Windows
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


GC_THRESHOLD0 = 10_000
"""Net container allocations between young-generation collections (CPython's default is 700)."""


def tune_gc() -> None:
    """Collect the young generation every 10,000 net allocations instead of 700.

    Decoding watch events and API answers allocates thousands of short-lived dicts a second, and with
    CPython's default every 700th allocation walks the young objects, every 10th such collection the
    middle generation, and every few of those the whole heap, which holds the cache (about a million
    objects at 1000 MCPServers: 50-90 ms a walk). Decoded JSON holds no reference cycles, so most young
    objects are freed by reference counting before a later collection would look at them; cycles
    (asyncio tasks, exceptions) are still collected, a little later. In
    bench_operator (N=1000: create, roll, delete) collections took 0.89 s of CPU with 700 (527 young,
    48 middle, 5 full) and 0.14 s with 10,000 (17 young, 2 middle, no full one), peak RSS unchanged.
    """
    gc.set_threshold(GC_THRESHOLD0, *gc.get_threshold()[1:])


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    configure_logging(args.log_level, args.log_format)
    tune_gc()
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(serve(args))
