"""In-cluster credentials: the pod's service account and the ``kubernetes`` Service's address.

The kubelet mounts the token, the cluster CA and the namespace under :data:`SERVICE_ACCOUNT_DIR` and sets
``KUBERNETES_SERVICE_HOST`` / ``KUBERNETES_SERVICE_PORT`` in every container.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from kube.credentials import (
    TOKEN_FILE_REREAD,
    ConfigError,
    Connection,
    ca_context,
    token_file_authorization,
)

__all__ = [
    "CA_FILE",
    "NAMESPACE_FILE",
    "SERVICE_ACCOUNT_DIR",
    "TOKEN_FILE",
    "in_cluster_server",
    "service_account",
    "service_account_namespace",
]

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TOKEN_FILE = SERVICE_ACCOUNT_DIR / "token"
CA_FILE = SERVICE_ACCOUNT_DIR / "ca.crt"
NAMESPACE_FILE = SERVICE_ACCOUNT_DIR / "namespace"


def in_cluster_server(environ: Mapping[str, str] | None = None, *, otherwise: str = "set KUBECONFIG") -> str:
    """``https://host:port`` of the API server as seen from a pod; ``otherwise`` is the fix the error
    names for a process that is not in a pod."""
    env = os.environ if environ is None else environ
    host = env.get("KUBERNETES_SERVICE_HOST")
    if not host:
        raise ConfigError(
            "KUBERNETES_SERVICE_HOST is not set, so this is not a pod that can reach the Kubernetes API: "
            f"run in a pod, or {otherwise}"
        )
    port = env.get("KUBERNETES_SERVICE_PORT", "443")
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


def service_account(
    server: str | None = None,
    *,
    token_file: Path = TOKEN_FILE,
    ca_file: Path | None = CA_FILE,
    token_reread: float = TOKEN_FILE_REREAD,
) -> Connection:
    """The pod's service account: its (rotating) token, the cluster CA (the system trust store when
    ``ca_file`` is None or missing) and ``server`` (default: :func:`in_cluster_server`)."""
    return Connection(
        (server or in_cluster_server()).rstrip("/"),
        ca_context(ca_file),
        token_file_authorization(token_file, reread=token_reread),
    )


def service_account_namespace(path: Path = NAMESPACE_FILE) -> str | None:
    """The pod's namespace from its service account, or None outside a pod."""
    try:
        return path.read_text().strip() or None
    except OSError:
        return None
