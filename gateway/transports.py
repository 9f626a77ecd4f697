"""Backend transports: from a :data:`api.proxy_config.BackendConfig` to a ``TransportFactory``.

- ``stdio``: :func:`gateway.stdio_transport.stdio_transport` (the SDK's ``stdio_client`` lifecycle:
  spawns the subprocess; stdin closed, then SIGTERM, then SIGKILL on shutdown; plus a raw line wire for
  the fast path); a new process on every (re)connect. The subprocess inherits the proxy's environment plus
  ``backend.env`` (``mcp-operator proxy -- CMD`` behaves like running CMD: its API keys reach it);
- ``http``: the SDK's ``streamable_http_client`` or ``sse_client``; ``backend.auth`` and
  ``backend.headerForward`` become a :mod:`gateway.auth.outbound` credential provider asked on every
  HTTP request (:class:`CredentialAuth`: OAuth2 client-credentials tokens refresh, rotated Secrets
  apply). The front client's token is never forwarded: the front's Authorization header is not visible
  here at all. ``tokenExchange`` needs a backend session per caller: ``transport_for(..., subject=...)``
  with the caller's inbound token as the exchange's subject (see :mod:`gateway.caller_backends`);
- ``attach``: :func:`gateway.attach.attach_transport` (the Kubernetes attach API).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Callable

import httpx2
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from api.proxy_config import AttachBackend, BackendConfig, HttpBackend, ProxyConfigError, StdioBackend
from gateway.auth.outbound import CredentialProvider, build_outbound_provider
from gateway.backend import Streams, TransportFactory
from gateway.ssrf import check_endpoint
from gateway.stdio_transport import stdio_transport

__all__ = [
    "CredentialAuth",
    "check_outbound",
    "describe_backend",
    "needs_caller_sessions",
    "outbound_provider",
    "transport_for",
]


def describe_backend(config: BackendConfig) -> str:
    """A short human description for logs and ``/readyz``."""
    if isinstance(config, StdioBackend):
        return f"stdio:{config.command[0]}"
    if isinstance(config, AttachBackend):
        return f"attach:{config.namespace}/{config.pod}/{config.container}"
    return f"{config.transport}:{config.url}"


class CredentialAuth(httpx2.Auth):
    """Adds the outbound credential's headers to every HTTP request sent to the backend.

    The provider is asked on each request, so an OAuth2 client-credentials token is refreshed before it
    expires and a rotated Secret applies without a reconnect. ``subject`` gives the caller's inbound token
    to a token-exchange provider (the subject token of the exchange, never a header); it is only set for
    a per-caller backend session (:mod:`gateway.caller_backends`).
    """

    def __init__(self, provider: CredentialProvider, subject: Callable[[], str] | None = None) -> None:
        self.provider = provider
        self.subject = subject

    async def async_auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        subject = self.subject() if self.subject is not None else None
        for name, value in (await self.provider.headers(subject)).items():
            request.headers[name] = value
        yield request


def needs_caller_sessions(config: BackendConfig) -> bool:
    """Whether the backend must be reached with one session per caller (``tokenExchange``)."""
    return isinstance(config, HttpBackend) and config.auth is not None and config.auth.type == "tokenExchange"


def check_outbound(config: HttpBackend, *, per_caller: bool = False) -> None:
    """Raise ``ProxyConfigError`` for an outbound credential this transport cannot use."""
    if needs_caller_sessions(config) and not per_caller:
        raise ProxyConfigError(
            "backend.auth type 'tokenExchange' needs one backend session per caller: build the transport "
            "with the caller's token (transport_for(..., subject=...)), as build_proxy_app does"
        )


def outbound_provider(config: HttpBackend, *, per_caller: bool = False) -> CredentialProvider | None:
    """The credential provider for an HTTP backend, or None without ``auth`` / ``headerForward``."""
    check_outbound(config, per_caller=per_caller)
    if config.auth is None and config.header_forward is None:
        return None
    return build_outbound_provider(config.auth, header_forward=config.header_forward)


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


def _http(config: HttpBackend, subject: Callable[[], str] | None) -> TransportFactory:
    per_caller = subject is not None
    check_outbound(config, per_caller=per_caller)  # fail at start-up, naming the field

    @contextlib.asynccontextmanager
    async def factory() -> AsyncIterator[Streams]:
        await check_endpoint(config.url, allow_private=config.allow_private_endpoint)
        provider = outbound_provider(config, per_caller=per_caller)
        auth = CredentialAuth(provider, subject) if provider is not None else None
        try:
            if config.transport == "sse":
                async with sse_client(config.url, auth=auth, timeout=config.timeout_seconds) as streams:
                    yield streams[0], streams[1]
                return
            timeout = httpx2.Timeout(config.timeout_seconds, read=None)
            async with (
                httpx2.AsyncClient(auth=auth, timeout=timeout, follow_redirects=False) as client,
                streamable_http_client(config.url, http_client=client) as streams,
            ):
                yield streams[0], streams[1]
        finally:
            if provider is not None:
                await provider.aclose()

    return factory


def transport_for(config: BackendConfig, *, subject: Callable[[], str] | None = None) -> TransportFactory:
    """The transport factory for a backend config; ``subject``: one caller's inbound token, for a
    per-caller session (``tokenExchange``)."""
    if isinstance(config, StdioBackend):
        return _stdio(config)
    if isinstance(config, HttpBackend):
        return _http(config, subject)
    from gateway.attach import attach_transport  # noqa: PLC0415 (aiohttp only in the cluster mode)

    return attach_transport(config)
