"""``mcp-operator proxy``: run the MCP proxy.

``mcp-operator proxy [--host H] [--port P] [--config FILE] [--target URL] [--transport T] [-- CMD ARGS...]``

Exactly one backend: ``-- CMD ARGS`` (a stdio subprocess), ``--target URL`` (an HTTP MCP server;
``--transport sse`` for a legacy SSE endpoint) or the ``backend`` of ``--config FILE`` (the file the
operator renders; flags given next to it override its host / port / backend). Default 127.0.0.1:8080.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import uvicorn

from api.proxy_config import (
    DEFAULT_PORT,
    HttpBackend,
    ProxyConfig,
    ProxyConfigError,
    StdioBackend,
    load_proxy_config,
)
from gateway import tracing
from gateway.observability import start_metrics_export
from gateway.proxy import build_proxy_app
from gateway.transports import describe_backend, injects_upstream_token, needs_caller_sessions, transport_for
from logs import add_logging_flags, configure_logging

__all__ = ["main", "parse_args"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mcp-operator proxy", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help=f"port to bind (default {DEFAULT_PORT})")
    parser.add_argument("--config", default=None, help="proxy config file (JSON or YAML)")
    parser.add_argument("--target", default=None, help="URL of an HTTP MCP server to proxy")
    parser.add_argument("--transport", choices=["streamable-http", "sse"], default="streamable-http")
    parser.add_argument("--name", default=None, help="serverInfo name shown to clients")
    add_logging_flags(parser)
    return parser


def parse_args(argv: list[str]) -> tuple[ProxyConfig, argparse.Namespace]:
    """The effective config (file + flags) and the parsed flags; raises ``ProxyConfigError``."""
    command: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, command = argv[:split], argv[split + 1 :]
    args = _parser().parse_args(argv)
    base: dict[str, Any] = {}
    if args.config:
        base = load_proxy_config(args.config).model_dump(by_alias=False)
    if command and args.target:
        raise ProxyConfigError("give either --target URL or -- CMD ARGS, not both")
    if command:
        base["backend"] = StdioBackend(command=tuple(command))
    elif args.target:
        base["backend"] = HttpBackend(url=args.target, transport=args.transport)
    if "backend" not in base:
        raise ProxyConfigError("no backend: give -- CMD ARGS, --target URL or --config FILE with a backend")
    for key in ("host", "port", "name"):
        value = getattr(args, key)
        if value is not None:
            base[key] = value
    return ProxyConfig.model_validate(base), args


def main(argv: list[str]) -> int:
    try:
        config, args = parse_args(argv)
    except ProxyConfigError as exc:
        print(f"mcp-operator proxy: {exc}", file=sys.stderr)
        return 2
    configure_logging(args.log_level, args.log_format)
    backend = config.backend
    per_caller = needs_caller_sessions(backend, config.auth_server)
    bearer = injects_upstream_token(backend, config.auth_server)
    try:
        traces = tracing.start(config.name)
        app, runtime = build_proxy_app(
            config,
            None if per_caller else transport_for(backend),
            description=describe_backend(backend),
            caller_transport=(lambda subject: transport_for(backend, subject=subject, subject_bearer=bearer))
            if per_caller
            else None,
        )
    except (ProxyConfigError, ValueError, RuntimeError) as exc:  # RuntimeError: a secret that cannot be read
        print(f"mcp-operator proxy: {exc}", file=sys.stderr)
        return 2
    traces.register(runtime.metrics.registry)
    transport = backend.transport if isinstance(backend, HttpBackend) else "stdio"
    try:
        metrics_export = start_metrics_export(config.name, transport, app, runtime.metrics.registry)
    except ValueError as exc:
        print(f"mcp-operator proxy: {exc}", file=sys.stderr)
        return 2
    try:
        _serve(app, config)
    finally:
        if metrics_export is not None:
            metrics_export.shutdown()
        traces.shutdown()
    return 0


def _serve(app: Any, config: ProxyConfig) -> None:
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        log_level="warning",
        log_config=None,  # uvicorn's loggers write through configure_logging's renderer
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
