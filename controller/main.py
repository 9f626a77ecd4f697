"""``mcp-operator run``: the operator process.

At this stage it configures JSON logging, serves ``/healthz`` and ``/readyz`` and waits for SIGTERM or
Ctrl-C; the controller manager is attached to it as it grows.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal

import structlog

from controller.core.logs import configure_logging
from controller.core.probes import ProbeServer


def parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got '{value}'")


def parse_args(argv: list[str]) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="mcp-operator run", description="Run the mcp-operator controller.")
    parser.add_argument(
        "--kubeconfig",
        default=env("KUBECONFIG"),
        help="kubeconfig file (env KUBECONFIG; default: in-cluster config)",
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
        "--health-probe-bind-address",
        default=env("HEALTH_PROBE_BIND_ADDRESS", ":8081"),
        help="address for /healthz and /readyz (env HEALTH_PROBE_BIND_ADDRESS, default :8081)",
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
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    log = structlog.get_logger("mcp-operator")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    probes = ProbeServer(args.health_probe_bind_address, ready=lambda: True)
    await probes.start()
    log.info("operator started", health=args.health_probe_bind_address, pid=os.getpid())
    await stop.wait()
    log.info("shutting down")
    await probes.stop()
    log.info("stopped")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    configure_logging(args.log_level, args.log_format)
    asyncio.run(serve(args))
    return 0
