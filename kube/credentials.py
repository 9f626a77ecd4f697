"""How a request to the API server is authenticated and its TLS verified: the pieces every client shares.

A :class:`Connection` is the API server's base URL, the TLS context for it and the source of the
``Authorization`` header. Token files are re-read because projected service-account tokens rotate (the
kubelet swaps the file well before the old token expires). Every missing or invalid piece raises
:class:`ConfigError`, whose one-line message names what is missing and how to fix it.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "TOKEN_FILE_REREAD",
    "Authorization",
    "ConfigError",
    "Connection",
    "UnsupportedConfigError",
    "ca_context",
    "insecure_context",
    "no_authorization",
    "read_token",
    "static_token",
    "token_file_authorization",
]

TOKEN_FILE_REREAD = 60.0
"""Seconds between re-reads of a token file by :func:`token_file_authorization`."""

Authorization = Callable[[], Awaitable[str | None]]
"""Returns the ``Authorization`` header value for the next request, or None to send none."""


@dataclass
class Connection:
    """The API server's base URL, the TLS context for it and the ``Authorization`` header source."""

    server: str
    ssl_context: ssl.SSLContext
    authorization: Authorization


class ConfigError(RuntimeError):
    """The Kubernetes client configuration is missing or invalid; the message names what and the fix."""


class UnsupportedConfigError(Exception):
    """The kubeconfig needs kubernetes-asyncio's loader (exec plugin, auth provider, basic auth)."""


def no_authorization() -> Authorization:
    async def header() -> str | None:
        return None

    return header


def static_token(token: str) -> Authorization:
    async def header() -> str | None:
        return f"Bearer {token}"

    return header


def read_token(path: Path | str) -> str:
    """The bearer token in ``path`` (stripped), read now."""
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ConfigError(
            f"the bearer token file {path} does not exist: mount the pod's service-account token "
            "(automountServiceAccountToken: true) or point the client at a kubeconfig (KUBECONFIG)"
        ) from None


def token_file_authorization(
    path: Path, *, reread: float = TOKEN_FILE_REREAD, clock: Callable[[], float] = time.monotonic
) -> Authorization:
    """A bearer token read from ``path`` at most every ``reread`` seconds (0: on every call)."""
    cached: list[Any] = ["", 0.0]

    async def header() -> str | None:
        now = clock()
        if not cached[0] or now - cached[1] >= reread:
            cached[0] = read_token(path)
            cached[1] = now
        return f"Bearer {cached[0]}"

    return header


def ca_context(ca_file: Path | str | None) -> ssl.SSLContext:
    """TLS verification for the API server: the CA file as the only trust anchor when it exists (as in
    client-go), else the system's trust store."""
    if ca_file is not None and Path(ca_file).exists():
        return ssl.create_default_context(cafile=str(ca_file))
    return ssl.create_default_context()


def insecure_context() -> ssl.SSLContext:
    """No verification of the server's certificate (kubeconfig ``insecure-skip-tls-verify``)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
