"""Signing in at an independent OIDC provider (PyPI ``oidc-provider-mock``) as a browser would."""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2

CLIENT_ID = "mcp-client"
REDIRECT_URI = "http://127.0.0.1/callback"


def sign_in(issuer: str, sub: str, ca_file: str | None = None) -> dict[str, Any]:
    """Authorization-code flow as a browser and a confidential client would run it (trusting the CA of
    ``ca_file`` for an https issuer with a private CA)."""
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_file) if ca_file else True
    with httpx2.Client(base_url=issuer, verify=verify) as client:
        authorize = client.post(
            "/oauth2/authorize",
            params={
                "client_id": CLIENT_ID,
                "redirect_uri": REDIRECT_URI,
                "response_type": "code",
                "scope": "openid email",
            },
            data={"sub": sub},
        )
        assert authorize.status_code == 302, authorize.text
        code = parse_qs(urlsplit(authorize.headers["location"]).query)["code"][0]
        token = client.post(
            "/oauth2/token",
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
            auth=(CLIENT_ID, "any-secret"),
        )
        assert token.status_code == 200, token.text
        tokens: dict[str, Any] = token.json()
        return tokens
