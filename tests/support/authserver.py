"""An MCP client signing in through the proxy's embedded authorization server, as a user would.

The SDK's ``OAuthClientProvider`` runs discovery, registration, PKCE and the token requests; the
"browser" here follows the authorization URL: the proxy sends it to the upstream identity provider
(``oidc-provider-mock``), where the user signs in (the provider's form takes a ``sub``), back to the
proxy's callback, and on to the client's redirect URI with the code.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)

REDIRECT_URI = "http://127.0.0.1:9/callback"
UPSTREAM_CLIENT_ID = "mcp-proxy"


@dataclass
class MemoryTokens:
    """The client's token storage (``mcp.client.auth.TokenStorage``)."""

    tokens: OAuthToken | None = None
    client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


@dataclass
class Browser:
    """Follows an authorization URL to the client's redirect URI, signing in as ``user`` upstream."""

    user: str
    redirected: list[str] = field(default_factory=list)
    """Every location the browser was sent to, in order."""

    async def sign_in(self, url: str) -> dict[str, str]:
        """The query of the final redirect to :data:`REDIRECT_URI` (``code`` and ``state``, or ``error``)."""
        async with httpx2.AsyncClient(timeout=30) as http:
            to_upstream = await http.get(url)
            assert to_upstream.status_code == 302, to_upstream.text
            upstream = to_upstream.headers["location"]
            self.redirected.append(upstream)
            signed_in = await http.post(upstream, data={"sub": self.user})  # the provider's sign-in form
            assert signed_in.status_code == 302, signed_in.text
            callback = signed_in.headers["location"]
            self.redirected.append(callback)
            back = await http.get(callback)
            assert back.status_code == 302, back.text
            final = back.headers["location"]
            self.redirected.append(final)
        assert final.startswith(REDIRECT_URI), final
        return {k: v[0] for k, v in parse_qs(urlsplit(final).query).items()}


def oauth_client(base: str, browser: Browser, storage: MemoryTokens) -> OAuthClientProvider:
    """The SDK's OAuth provider for the proxy at ``base``, signing in through ``browser``."""
    pending: dict[str, str] = {}

    async def redirect(url: str) -> None:
        pending.update(await browser.sign_in(url))

    async def callback() -> AuthorizationCodeResult:
        return AuthorizationCodeResult(
            code=pending.pop("code"), state=pending.pop("state", None), iss=pending.pop("iss", None)
        )

    metadata = OAuthClientMetadata(
        redirect_uris=[REDIRECT_URI],  # type: ignore[list-item]
        client_name="mcp-operator tests",
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
    )
    return OAuthClientProvider(f"{base}/mcp", metadata, storage, redirect, callback)


@contextlib.asynccontextmanager
async def signed_in_client(base: str, auth: httpx2.Auth, mode: str) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(auth=auth, timeout=30) as http,
        Client(streamable_http_client(f"{base}/mcp", http_client=http), mode=mode) as client,  # type: ignore[arg-type]
    ):
        yield client


def signing_key(directory: Path) -> Path:
    """A fresh RSA private key in PEM, as a Secret volume would hold it."""
    path = directory / "signing.pem"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(path)],
        check=True,
        capture_output=True,
    )
    return path


def proxy_config(base: str, backend_url: str, upstream: str, key: Path, **server: Any) -> dict[str, Any]:
    """A proxy config with the embedded authorization server at ``base`` and the upstream at ``upstream``."""
    return {
        "name": "authserver",
        "backend": {"type": "http", "url": backend_url, "allowPrivateEndpoint": True},
        "authServer": {
            "issuer": base,
            "signingKeys": [{"file": str(key)}],
            "hmacSecrets": [{"env": "AUTH_HMAC"}],
            "upstream": {
                "type": "oidc",
                "issuerUrl": upstream,
                "clientId": UPSTREAM_CLIENT_ID,
                "clientSecretRef": {"env": "UPSTREAM_SECRET"},
                "scopes": ["openid", "email"],
                "allowPrivateEndpoint": True,  # the provider is on 127.0.0.1 in these tests
            },
            **server,
        },
    }


PROXY_ENV = {"AUTH_HMAC": "k" * 48, "UPSTREAM_SECRET": "upstream-client-secret"}
