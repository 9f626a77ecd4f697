"""The one HTTP policy of every HTTP backend (proxy, remote proxy, gateway), and its credential adapter.

The policy (docs/proxy.md and docs/vmcp.md): ``connect_timeout`` to connect and write, no read timeout
(the supervisor bounds calls); redirects never followed (they could lead the credential elsewhere); the
SSRF guard before every (re)connect; outbound credentials asked on every request through
:class:`CredentialAuth`, so tokens refresh and rotated Secrets apply without a reconnect. A streamable
HTTP connection also lends its client to the raw 2026-07-28 leg (:class:`gateway.backends.modern_http.
HttpLeg`), so both legs share one pool and one policy. The optimizer's embedding service
(:mod:`gateway.backends.embeddings`) is reached under the same policy (:func:`policy_client`).
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Literal

import httpx2
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from api.auth_config import HeaderForwardConfig, OutboundAuthConfig, ca_bundle_context
from gateway import passthrough
from gateway.auth.outbound import (
    CompositeProvider,
    CredentialProvider,
    SubjectBearerProvider,
    build_outbound_provider,
)
from gateway.backends.connection import Streams, TransportFactory
from gateway.backends.h1 import H1Pool, direct_origin
from gateway.backends.modern_http import HttpLeg
from gateway.backends.ssrf import check_endpoint

__all__ = ["CredentialAuth", "http_transport", "policy_client"]


class CredentialAuth(httpx2.Auth):
    """Adds the outbound credential's headers to every HTTP request sent to the backend.

    ``subject`` gives the caller's inbound token to a token-exchange provider (the subject token of the
    exchange, never a header); it is only set for a per-caller backend session
    (:mod:`gateway.backends.callers`).
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


def _credentials(adapter: CredentialAuth | None) -> Callable[[], Awaitable[dict[str, str]]] | None:
    """The credential headers of one request, for a client that is not ``httpx2`` (the raw leg's)."""
    if adapter is None:
        return None

    async def headers() -> dict[str, str]:
        subject = adapter.subject() if adapter.subject is not None else None
        return await adapter.provider.headers(subject)

    return headers


def tls_verification(ca_bundle: str | None) -> ssl.SSLContext | bool:
    """httpx's ``verify``: the system CAs, or only the PEM CAs of ``ca_bundle`` (ValueError when they do
    not load: the backend is then not connected, never verified with other CAs)."""
    return True if ca_bundle is None else ca_bundle_context(ca_bundle)


def policy_client(
    *,
    timeout: httpx2.Timeout | float | None,
    headers: dict[str, str] | None = None,
    auth: httpx2.Auth | None = None,
    verify: ssl.SSLContext | bool = True,
) -> httpx2.AsyncClient:
    """An ``httpx2`` client under the policy: redirects are never followed (they could lead a credential
    elsewhere); ``verify`` as :func:`tls_verification` gives it. The caller runs the SSRF guard."""
    return httpx2.AsyncClient(
        headers=headers, timeout=timeout, auth=auth, follow_redirects=False, verify=verify
    )


def http_transport(
    url: str,
    transport: Literal["streamable-http", "sse"],
    *,
    connect_timeout: float,
    allow_private: bool,
    auth: OutboundAuthConfig | None = None,
    header_forward: HeaderForwardConfig | None = None,
    subject: Callable[[], str] | None = None,
    subject_bearer: bool = False,
    ca_bundle: str | None = None,
) -> TransportFactory:
    """The factory opening one connection to ``url`` under the policy above (``ca_bundle``: PEM CAs that
    verify its TLS certificate instead of the system CAs; ``subject_bearer``: ``subject`` is sent as the
    bearer itself, the caller's upstream token of the embedded authorization server)."""

    @contextlib.asynccontextmanager
    async def factory() -> AsyncIterator[Streams]:
        await check_endpoint(url, allow_private=allow_private)
        verify = tls_verification(ca_bundle)

        def client(
            headers: dict[str, str] | None = None,
            timeout: httpx2.Timeout | None = None,
            auth: httpx2.Auth | None = None,
        ) -> httpx2.AsyncClient:
            return policy_client(headers=headers, timeout=timeout, auth=auth, verify=verify)

        credentials = auth is not None or header_forward is not None
        provider = build_outbound_provider(auth, header_forward=header_forward) if credentials else None
        if subject_bearer:
            provider = CompositeProvider([p for p in (provider, SubjectBearerProvider()) if p is not None])
        adapter = CredentialAuth(provider, subject) if provider is not None else None
        try:
            if transport == "sse":
                async with sse_client(
                    url, auth=adapter, timeout=connect_timeout, httpx_client_factory=client
                ) as streams:
                    yield streams[0], streams[1]
                return
            timeout = httpx2.Timeout(connect_timeout, read=None)
            origin = direct_origin(url)
            pool = H1Pool(*origin, connect_timeout=connect_timeout) if origin is not None else None
            async with (
                client(auth=adapter, timeout=timeout) as http,
                streamable_http_client(url, http_client=http) as streams,
            ):
                try:
                    writes = passthrough.ForwardingWrites(streams[1]) if passthrough.enabled else streams[1]
                    yield streams[0], writes, HttpLeg(http, url, pool, _credentials(adapter))
                finally:
                    if pool is not None:
                        pool.close()
        finally:
            if provider is not None:
                await provider.aclose()

    return factory
