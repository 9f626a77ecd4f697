"""One log format for every process of the image: the operator, the proxy and the gateway.

structlog, one JSON object per line on stderr (``--log-format console`` for people reading a terminal),
each with the keys ``timestamp`` (ISO 8601, UTC), ``level``, ``logger`` and ``event``, plus the line's
context: its keyword arguments and the context variables bound with ``structlog.contextvars`` (the
operator's ``reconcile_id``, ``controller``, ``namespace``, ``name``). Lines of standard-library loggers
(the data plane's own, uvicorn's, the HTTP client's) pass through the same renderer, so a process writes
one format whatever library wrote the line.

Each process takes ``--log-level`` and ``--log-format`` with their environment twins ``LOG_LEVEL`` and
``LOG_FORMAT`` (:func:`add_logging_flags`), so a proxy's level can be raised through its pod's env.

This package imports no other package of the project: the operator and the data plane both sit above it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

import structlog

__all__ = ["FORMATS", "LEVELS", "add_logging_flags", "configure_logging"]

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("json", "console")
# Libraries that log an INFO line per request or per client session: the HTTP client ("HTTP Request: POST
# ...", which doubled the log of every backend call) and the MCP SDK's streamable-HTTP server ("Created new
# transport with session ID: ...", which also wrote the session's id). Their warnings and errors still show;
# their INFO lines only at debug.
PER_REQUEST_LOGGERS = (
    "httpx2",
    "httpcore",
    "mcp.server.streamable_http",
    "mcp.server.streamable_http_manager",
)


class _OurHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler :func:`configure_logging` installs (and replaces when called again)."""


def add_logging_flags(parser: argparse.ArgumentParser) -> None:
    """``--log-level`` and ``--log-format``, each defaulting to its environment twin."""
    for flag, default, choices in (("log-level", "info", LEVELS), ("log-format", "json", FORMATS)):
        env_name = flag.upper().replace("-", "_")
        parser.add_argument(
            f"--{flag}",
            default=os.environ.get(env_name) or default,
            choices=list(choices),
            help=f"{flag.replace('-', ' ')} (env {env_name}; default {default})",
        )


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    """Route structlog and the standard library's root logger to one renderer on stderr at ``level``."""
    numeric = logging.getLevelName(level.upper())
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    ]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    handler = _OurHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.StackInfoRenderer(),
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not isinstance(h, _OurHandler)] + [handler]
    root.setLevel(numeric)
    for name in PER_REQUEST_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if numeric <= logging.DEBUG else logging.WARNING)
