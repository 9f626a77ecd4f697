"""Where the API server is and how to authenticate to it: kubeconfig files and in-cluster config.

The common cases (a bearer token, a token file, client certificates, the in-cluster service account)
are read here with the standard library, because importing ``kubernetes_asyncio.client`` (which the
kubeconfig loader of kubernetes-asyncio pulls in) costs about 60 MB of resident memory: more than a
thousand cached MCPServers and their children. Anything else (exec plugins, auth providers, basic
auth) is handed to kubernetes-asyncio, loaded only then.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TOKEN_FILE_REREAD = 60.0
"""Seconds between re-reads of a token file (projected service-account tokens rotate)."""

Authorization = Callable[[], Awaitable[str | None]]


@dataclass
class Connection:
    """The API server's base URL, the TLS context for it and the ``Authorization`` header source."""

    server: str
    ssl_context: ssl.SSLContext
    authorization: Authorization


class UnsupportedConfigError(Exception):
    """The kubeconfig needs kubernetes-asyncio's loader (exec plugin, auth provider, basic auth)."""


def _no_auth() -> Authorization:
    async def header() -> str | None:
        return None

    return header


def _static_token(token: str) -> Authorization:
    async def header() -> str | None:
        return f"Bearer {token}"

    return header


def _token_file(path: Path) -> Authorization:
    cached: list[Any] = ["", 0.0]

    async def header() -> str | None:
        now = time.monotonic()
        if not cached[0] or now - cached[1] > TOKEN_FILE_REREAD:
            cached[0] = path.read_text().strip()  # noqa: ASYNC240 - a small local file, once a minute
            cached[1] = now
        return f"Bearer {cached[0]}"

    return header


def _materialise(data: str | None, path: str | None, base: Path, suffix: str) -> str | None:
    """A file path for a ``*-data`` field (base64, written to a private temp file) or a path field."""
    if data:
        handle = tempfile.NamedTemporaryFile(prefix="mcp-operator-", suffix=suffix, delete=False)  # noqa: SIM115
        with handle:
            handle.write(base64.b64decode(data))
        os.chmod(handle.name, 0o600)
        return handle.name
    if path:
        return str(base / path) if not os.path.isabs(path) else path
    return None


def _ssl_context(cluster: dict[str, Any], user: dict[str, Any], base: Path) -> ssl.SSLContext:
    """The cluster's CA is the only trust anchor when given (as in client-go); else the system's."""
    ca = _materialise(
        cluster.get("certificate-authority-data"), cluster.get("certificate-authority"), base, ".crt"
    )
    if cluster.get("insecure-skip-tls-verify"):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif ca:
        context = ssl.create_default_context(cafile=ca)
    else:
        context = ssl.create_default_context()
    cert = _materialise(user.get("client-certificate-data"), user.get("client-certificate"), base, ".crt")
    key = _materialise(user.get("client-key-data"), user.get("client-key"), base, ".key")
    if cert and key:
        context.load_cert_chain(cert, key)
    return context


def _named(entries: list[dict[str, Any]] | None, name: str | None, what: str, path: str) -> dict[str, Any]:
    for entry in entries or []:
        if entry.get("name") == name:
            return dict(entry.get(what) or {})
    raise ValueError(f"kubeconfig {path}: no {what} named '{name}'; check current-context and its {what}")


def from_kubeconfig_file(path: str, context: str | None = None) -> Connection:
    """Read ``path``; raise :class:`UnsupportedConfigError` when it needs kubernetes-asyncio's loader."""
    config = yaml.safe_load(Path(path).read_text()) or {}
    base = Path(path).resolve().parent
    context_name = context or config.get("current-context")
    ctx = _named(config.get("contexts"), context_name, "context", path)
    cluster = _named(config.get("clusters"), ctx.get("cluster"), "cluster", path)
    user = _named(config.get("users"), ctx.get("user"), "user", path) if ctx.get("user") else {}
    if any(user.get(k) for k in ("exec", "auth-provider", "username", "password")) or cluster.get(
        "tls-server-name"
    ):
        raise UnsupportedConfigError(path)
    server = str(cluster.get("server") or "")
    if not server:
        raise ValueError(
            f"kubeconfig {path}: cluster '{ctx.get('cluster')}' has no server; set clusters[].cluster.server"
        )
    if user.get("token"):
        authorization = _static_token(str(user["token"]))
    elif user.get("tokenFile"):
        authorization = _token_file(base / str(user["tokenFile"]))
    else:
        authorization = _no_auth()
    return Connection(server.rstrip("/"), _ssl_context(cluster, user, base), authorization)


def in_cluster(directory: Path = SERVICE_ACCOUNT_DIR) -> Connection:
    """The pod's service account: KUBERNETES_SERVICE_HOST/PORT, its CA and its (rotating) token."""
    host = os.environ["KUBERNETES_SERVICE_HOST"]
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if ":" in host:
        host = f"[{host}]"
    context = ssl.create_default_context(cafile=str(directory / "ca.crt"))
    return Connection(f"https://{host}:{port}", context, _token_file(directory / "token"))
