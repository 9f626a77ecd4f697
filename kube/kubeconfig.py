"""Where the API server is and how to authenticate to it: kubeconfig files, then in-cluster config.

The common cases (a bearer token, a token file, client certificates, the in-cluster service account)
are read here with the standard library, because importing ``kubernetes_asyncio.client`` (which the
kubeconfig loader of kubernetes-asyncio pulls in) costs about 60 MB of resident memory: more than a
thousand cached MCPServers and their children. Anything else (exec plugins, auth providers, basic
auth) is handed to :mod:`kube.plugin_config`, loaded only then.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from kube.credentials import (
    ConfigError,
    Connection,
    UnsupportedConfigError,
    ca_context,
    insecure_context,
    no_authorization,
    static_token,
    token_file_authorization,
)
from kube.service_account import TOKEN_FILE, service_account

__all__ = ["from_kubeconfig_file", "load_connection"]


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


def _ssl_context(cluster: dict[str, Any], user: dict[str, Any], base: Path, source: str) -> ssl.SSLContext:
    """The cluster's CA is the only trust anchor when given (as in client-go); else the system's."""
    ca = _materialise(
        cluster.get("certificate-authority-data"), cluster.get("certificate-authority"), base, ".crt"
    )
    if ca and not Path(ca).exists():
        raise ConfigError(f"kubeconfig {source}: certificate-authority {ca} does not exist; fix the path")
    context = insecure_context() if cluster.get("insecure-skip-tls-verify") else ca_context(ca)
    cert = _materialise(user.get("client-certificate-data"), user.get("client-certificate"), base, ".crt")
    key = _materialise(user.get("client-key-data"), user.get("client-key"), base, ".key")
    if cert and key:
        context.load_cert_chain(cert, key)
    return context


def _named(entries: list[dict[str, Any]] | None, name: str | None, what: str, path: str) -> dict[str, Any]:
    for entry in entries or []:
        if entry.get("name") == name:
            return dict(entry.get(what) or {})
    raise ConfigError(f"kubeconfig {path}: no {what} named '{name}'; check current-context and its {what}")


def from_kubeconfig_file(path: str, context: str | None = None) -> Connection:
    """Read ``path``; raise :class:`UnsupportedConfigError` when it needs kubernetes-asyncio's loader."""
    try:
        config = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(
            f"kubeconfig {path} does not exist; set KUBECONFIG (or --kubeconfig) to an existing file"
        ) from None
    base = Path(path).resolve().parent
    ctx = _named(config.get("contexts"), context or config.get("current-context"), "context", path)
    cluster = _named(config.get("clusters"), ctx.get("cluster"), "cluster", path)
    user = _named(config.get("users"), ctx.get("user"), "user", path) if ctx.get("user") else {}
    if any(user.get(k) for k in ("exec", "auth-provider", "username", "password")) or cluster.get(
        "tls-server-name"
    ):
        raise UnsupportedConfigError(path)
    server = str(cluster.get("server") or "")
    if not server:
        raise ConfigError(
            f"kubeconfig {path}: cluster '{ctx.get('cluster')}' has no server; set clusters[].cluster.server"
        )
    if user.get("token"):
        authorization = static_token(str(user["token"]))
    elif user.get("tokenFile"):
        authorization = token_file_authorization(base / str(user["tokenFile"]))
    else:
        authorization = no_authorization()
    return Connection(server.rstrip("/"), _ssl_context(cluster, user, base, path), authorization)


async def load_connection(
    kubeconfig: str | None = None,
    context: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> Connection:
    """``kubeconfig``, else $KUBECONFIG, else the pod's service account, else ~/.kube/config; a
    :class:`ConfigError` naming what is missing when there is none of them."""
    env = os.environ if environ is None else environ
    path = kubeconfig or env.get("KUBECONFIG")
    if not path and env.get("KUBERNETES_SERVICE_HOST"):
        if not TOKEN_FILE.exists():
            raise ConfigError(
                f"KUBERNETES_SERVICE_HOST is set but the service-account token {TOKEN_FILE} does not exist: "
                "mount it (automountServiceAccountToken: true) or set KUBECONFIG to a kubeconfig file"
            )
        return service_account()
    default = (home or Path.home()) / ".kube" / "config"
    if not path and not default.exists():
        raise ConfigError(
            f"no Kubernetes API configuration: KUBECONFIG is not set, {default} does not exist and this is "
            "not a pod with a service account (KUBERNETES_SERVICE_HOST unset); set KUBECONFIG (or pass "
            "--kubeconfig) to a kubeconfig file, or run in a pod"
        )
    path = path or str(default)
    try:
        return from_kubeconfig_file(path, context)
    except UnsupportedConfigError:
        from kube.plugin_config import plugin_connection  # noqa: PLC0415 - ~60 MB, only when needed

        return await plugin_connection(path, context)
