"""``mcp-operator vmcp``: run the virtual MCP gateway.

``mcp-operator vmcp [--host H] [--port P] --config FILE``

The config file is the one the operator renders into ConfigMap ``<name>-vmcp`` (see
``api.vmcp_config``); edits to it are applied without a restart. Default 127.0.0.1:8080.
"""

from __future__ import annotations

import argparse
import sys

import uvicorn

from api.vmcp_config import load_vmcp_config
from gateway import tracing
from gateway.observability import start_metrics_export
from gateway.vmcp.server import build_vmcp_app
from logs import add_logging_flags, configure_logging

__all__ = ["main"]

DEFAULT_PORT = 8080


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mcp-operator vmcp", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port to bind (default {DEFAULT_PORT})"
    )
    parser.add_argument("--config", required=True, help="gateway config file (YAML or JSON)")
    parser.add_argument(
        "--reload-interval", type=float, default=1.0, help="seconds between config-file checks (default 1)"
    )
    add_logging_flags(parser)
    return parser


def main(argv: list[str]) -> int:
    """Entry point dispatched by ``controller.cli``; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        config = load_vmcp_config(args.config)
    except (OSError, ValueError) as exc:
        print(f"mcp-operator vmcp: {exc}", file=sys.stderr)
        return 2
    configure_logging(args.log_level, args.log_format)
    try:
        traces = tracing.start(config.name)
    except ValueError as exc:
        print(f"mcp-operator vmcp: {exc}", file=sys.stderr)
        return 2
    app, gateway = build_vmcp_app(
        config,
        config_path=args.config,
        bind_host=args.host,
        port=args.port,
        reload_interval=args.reload_interval,
    )
    registry = gateway.policy.metrics.registry
    traces.register(registry)
    try:  # the gateway's front is streamable HTTP, as ToolHive's vMCP reports it
        metrics_export = start_metrics_export(config.name, "streamable-http", app, registry)
    except ValueError as exc:
        print(f"mcp-operator vmcp: {exc}", file=sys.stderr)
        return 2
    try:
        uvicorn.run(
            app, host=args.host, port=args.port, log_level=args.log_level, log_config=None, access_log=False
        )
    finally:
        if metrics_export is not None:
            metrics_export.shutdown()
        traces.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
