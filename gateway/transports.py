"""Backend transports: from a :data:`api.proxy_config.BackendConfig` to a ``TransportFactory``.

``stdio`` (a new process per (re)connect, with the proxy's environment plus ``backend.env``), ``http``
(the one HTTP policy; ``tokenExchange`` needs ``subject``, one caller's inbound token) and ``attach``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable

from mcp.client.stdio import StdioServerParameters

from api.authserver_config import AuthServerConfig
from api.proxy_config import AttachBackend, BackendConfig, HttpBackend, ProxyConfigError, StdioBackend
from gateway.backends.connection import Streams, TransportFactory
from gateway.backends.http import http_transport
from gateway.backends.stdio import stdio_transport

__all__ = ["describe_backend", "injects_upstream_token", "needs_caller_sessions", "transport_for"]


def describe_backend(config: BackendConfig) -> str:
    """A short human description for logs and ``/readyz``."""
    if isinstance(config, StdioBackend):
        return f"stdio:{config.command[0]}"
    if isinstance(config, AttachBackend):
        return f"attach:{config.namespace}/{config.pod}/{config.container}"
    return f"{config.transport}:{config.url}"


def injects_upstream_token(config: BackendConfig, auth_server: AuthServerConfig | None) -> bool:
    """Whether the backend receives each caller's upstream access token (embedded authorization server)."""
    return (
        isinstance(config, HttpBackend)
        and config.auth is None  # a tokenExchange credential exchanges the upstream token instead
        and auth_server is not None
        and not auth_server.disable_upstream_token_injection
    )


def needs_caller_sessions(config: BackendConfig, auth_server: AuthServerConfig | None = None) -> bool:
    """Whether the backend must be reached with one session per caller (``tokenExchange``, or the
    caller's upstream token of the embedded authorization server)."""
    exchange = (
        isinstance(config, HttpBackend) and config.auth is not None and config.auth.type == "tokenExchange"
    )
    return exchange or injects_upstream_token(config, auth_server)


def _stdio(config: StdioBackend) -> TransportFactory:
    def factory() -> contextlib.AbstractAsyncContextManager[Streams]:
        params = StdioServerParameters(
            command=config.command[0],
            args=list(config.command[1:]),
            env={**os.environ, **config.env},
            cwd=config.cwd,
        )
        return stdio_transport(params, errlog=sys.stderr)

    return factory


def _http(config: HttpBackend, subject: Callable[[], str] | None, subject_bearer: bool) -> TransportFactory:
    if needs_caller_sessions(config) and subject is None:  # fail at start-up, naming the field
        raise ProxyConfigError(
            "backend.auth type 'tokenExchange' needs one backend session per caller: build the transport "
            "with the caller's token (transport_for(..., subject=...)), as build_proxy_app does"
        )
    return http_transport(
        config.url,
        config.transport,
        connect_timeout=config.timeout_seconds,
        allow_private=config.allow_private_endpoint,
        auth=config.auth,
        header_forward=config.header_forward,
        subject=subject,
        subject_bearer=subject_bearer,
    )


def transport_for(
    config: BackendConfig, *, subject: Callable[[], str] | None = None, subject_bearer: bool = False
) -> TransportFactory:
    """The transport factory for a backend config; ``subject``: one caller's token, for a per-caller
    session (the subject of a ``tokenExchange``, or with ``subject_bearer`` the bearer itself)."""
    if isinstance(config, StdioBackend):
        return _stdio(config)
    if isinstance(config, HttpBackend):
        return _http(config, subject, subject_bearer)
    from gateway.backends.attach import attach_transport  # noqa: PLC0415 (aiohttp only in the cluster mode)

    return attach_transport(config)
