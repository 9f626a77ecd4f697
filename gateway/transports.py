"""Backend transports: from a :data:`api.proxy_config.BackendConfig` to a ``TransportFactory``.

- ``stdio``: the SDK's ``stdio_client`` (spawns the subprocess; stdin closed, then SIGTERM, then SIGKILL
  on shutdown); a new process on every (re)connect. The subprocess inherits the proxy's environment plus
  ``backend.env`` (``mcp-operator proxy -- CMD`` behaves like running CMD: its API keys reach it);
- ``http``: the SDK's ``streamable_http_client`` or ``sse_client`` with the configured extra headers
  (secret values read at connect time from their env var / file; the front client's token is never
  forwarded: the front's Authorization header is not visible here at all);
- ``attach``: :func:`gateway.attach.attach_transport` (the Kubernetes attach API).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from api.auth_config import HeaderForwardConfig, SecretValueSource
from api.proxy_config import AttachBackend, BackendConfig, HttpBackend, StdioBackend
from gateway.backend import Streams, TransportFactory
from gateway.ssrf import check_endpoint

__all__ = ["describe_backend", "transport_for"]


def describe_backend(config: BackendConfig) -> str:
    """A short human description for logs and ``/readyz``."""
    if isinstance(config, StdioBackend):
        return f"stdio:{config.command[0]}"
    if isinstance(config, AttachBackend):
        return f"attach:{config.namespace}/{config.pod}/{config.container}"
    return f"{config.transport}:{config.url}"


def _read_secret(source: SecretValueSource) -> str:
    if source.env is not None:
        value = os.environ.get(source.env)
        if value is None:
            raise RuntimeError(f"environment variable {source.env} (a secret reference) is not set")
        return value
    assert source.file is not None
    return Path(source.file).read_text(encoding="utf-8").rstrip("\n")


def _headers(forward: HeaderForwardConfig | None, config: HttpBackend) -> dict[str, str]:
    headers: dict[str, str] = {}
    if forward is not None:
        headers.update(forward.add_plaintext_headers)
        for entry in forward.add_headers_from_secret:
            headers[entry.header_name] = _read_secret(entry.value_secret_ref)
    auth = config.auth
    if auth is not None:
        if auth.type == "headerInjection":
            headers[auth.header_name] = _read_secret(auth.value_secret_ref)
        elif auth.type == "bearerToken":
            headers["Authorization"] = f"Bearer {_read_secret(auth.token_secret_ref)}"
        else:
            raise RuntimeError(
                f"backend.auth type {auth.type!r} needs the remote-proxy token flow, which this proxy build "
                "does not implement; use headerInjection or bearerToken"
            )
    return headers


def _stdio(config: StdioBackend) -> TransportFactory:
    def factory() -> contextlib.AbstractAsyncContextManager[Streams]:
        params = StdioServerParameters(
            command=config.command[0],
            args=list(config.command[1:]),
            env={**os.environ, **config.env},
            cwd=config.cwd,
        )
        return stdio_client(params, errlog=sys.stderr)

    return factory


def _http(config: HttpBackend) -> TransportFactory:
    @contextlib.asynccontextmanager
    async def factory() -> AsyncIterator[Streams]:
        await check_endpoint(config.url, allow_private=config.allow_private_endpoint)
        headers = _headers(config.header_forward, config)
        if config.transport == "sse":
            async with sse_client(config.url, headers=headers, timeout=config.timeout_seconds) as streams:
                yield streams[0], streams[1]
            return
        timeout = httpx2.Timeout(config.timeout_seconds, read=None)
        async with (
            httpx2.AsyncClient(headers=headers, timeout=timeout, follow_redirects=False) as client,
            streamable_http_client(config.url, http_client=client) as streams,
        ):
            yield streams[0], streams[1]

    return factory


def transport_for(config: BackendConfig) -> TransportFactory:
    """The transport factory for a backend config."""
    if isinstance(config, StdioBackend):
        return _stdio(config)
    if isinstance(config, HttpBackend):
        return _http(config)
    from gateway.attach import attach_transport  # noqa: PLC0415 (aiohttp only in the cluster mode)

    return attach_transport(config)
