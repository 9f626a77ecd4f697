"""Custom resources as the reconciler tests create them: MCPExternalAuthConfigs of each type and
MCPRemoteProxies (MCPServers are in ``tests.support.mcpserver``)."""

from __future__ import annotations

from typing import Any

TOKEN_URL = "https://idp.example.com/token"


def auth_config(name: str, type_: str, settings: dict[str, Any]) -> dict[str, Any]:
    """An MCPExternalAuthConfig of ``type_`` whose block of that name holds ``settings``."""
    return {
        "kind": "MCPExternalAuthConfig",
        "metadata": {"name": name},
        "spec": {"type": type_, type_: settings},
    }


def bearer_token(name: str, secret: str, key: str) -> dict[str, Any]:
    """Sends the token in Secret ``secret`` (at ``key``) as ``Authorization: Bearer``."""
    return auth_config(name, "bearerToken", {"tokenSecretRef": {"name": secret, "key": key}})


def header_injection(name: str, header: str, secret: str, key: str) -> dict[str, Any]:
    """Sends the value in Secret ``secret`` (at ``key``) in the header ``header``."""
    return auth_config(
        name, "headerInjection", {"headerName": header, "valueSecretRef": {"name": secret, "key": key}}
    )


def client_credentials(
    name: str, secret: str, key: str, token_url: str = TOKEN_URL, **extra: Any
) -> dict[str, Any]:
    """Gets a token at ``token_url`` with the OAuth2 client-credentials grant; ``extra`` adds settings."""
    return auth_config(name, "oauth2ClientCredentials", {**_token_client(secret, key, token_url), **extra})


def token_exchange(name: str, secret: str, key: str, audience: str) -> dict[str, Any]:
    """Exchanges the caller's token at ``TOKEN_URL`` for one meant for ``audience``."""
    return auth_config(name, "tokenExchange", {**_token_client(secret, key, TOKEN_URL), "audience": audience})


def _token_client(secret: str, key: str, token_url: str) -> dict[str, Any]:
    """The token endpoint and the client the proxy is there: ``proxy``, its secret in ``secret``/``key``."""
    return {"tokenUrl": token_url, "clientId": "proxy", "clientSecretRef": {"name": secret, "key": key}}


def remote_proxy(name: str, url: str = "https://mcp.example.com/mcp", **spec: Any) -> dict[str, Any]:
    return {"kind": "MCPRemoteProxy", "metadata": {"name": name}, "spec": {"remoteUrl": url, **spec}}
