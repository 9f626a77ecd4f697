"""Kubeconfigs that :mod:`kube.kubeconfig` does not read itself (exec plugins, auth providers, basic
auth, ``tls-server-name``), read by kubernetes-asyncio's loader.

The only module that imports the third-party Kubernetes client (an import contract keeps it so): it
costs about 60 MB of resident memory, so it is imported only when such a kubeconfig is in use.
"""

from __future__ import annotations

from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio import config as k8s_config

from kube.credentials import Connection, ca_context, insecure_context

__all__ = ["plugin_connection"]


async def plugin_connection(path: str, context: str | None) -> Connection:
    """The connection kubernetes-asyncio's loader makes of ``path``; its token source refreshes
    exec-plugin and auth-provider credentials as they expire."""
    cfg = k8s_client.Configuration()
    await k8s_config.load_kube_config(config_file=path, context=context, client_configuration=cfg)
    ssl_context = ca_context(cfg.ssl_ca_cert) if cfg.verify_ssl else insecure_context()
    if cfg.cert_file:
        ssl_context.load_cert_chain(cfg.cert_file, cfg.key_file)

    async def authorization() -> str | None:
        token: str | None = await cfg.get_api_key_with_prefix("BearerToken", alias="authorization")
        return token

    return Connection(str(cfg.host).rstrip("/"), ssl_context, authorization)
