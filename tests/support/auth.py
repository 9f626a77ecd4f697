"""A test authorization server (discovery, JWKS, token endpoint) and the tokens the auth tests present,
served with uvicorn in the test's event loop on 127.0.0.1."""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import hmac
import json
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

import httpx2
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.asgi import serve_asgi

AUDIENCE = "mcp-proxy"
# Built once: an httpx2 client loading the default CA bundle itself takes ~0.5 s on the CI machine.
TLS_CONTEXT = ssl.create_default_context()


@functools.cache
def rsa_key(name: str) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


@functools.cache
def ec_key(name: str) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_jwk(private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, kid: str) -> dict[str, Any]:
    algorithm = RSAAlgorithm if isinstance(private, rsa.RSAPrivateKey) else ECAlgorithm
    jwk: dict[str, Any] = algorithm.to_jwk(private.public_key(), as_dict=True)
    jwk.update(kid=kid, use="sig")
    return jwk


def bind() -> tuple[socket.socket, str]:
    """A listening-ready socket on a free 127.0.0.1 port, and its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


def serve(*apps: tuple[socket.socket, Any]) -> contextlib.AbstractAsyncContextManager[None]:
    """Run each ``(socket, ASGI app)`` under uvicorn in this loop (lifespan off); stop them all together."""
    return serve_asgi(*apps, lifespan="off")


@dataclass
class Issuer:
    """Discovery, JWKS and token endpoint of a test authorization server."""

    url: str = ""
    keys: list[dict[str, Any]] = field(
        default_factory=lambda: [public_jwk(rsa_key("issuer"), "rsa-1"), public_jwk(ec_key("issuer"), "ec-1")]
    )
    jwks_requests: int = 0
    token_requests: list[dict[str, str]] = field(default_factory=list)
    token_status: int = 200
    expires_in: int = 600

    def app(self) -> Starlette:
        async def discovery(request: Request) -> Response:
            return JSONResponse(
                {"issuer": self.url, "jwks_uri": f"{self.url}/jwks", "token_endpoint": f"{self.url}/token"}
            )

        async def jwks(request: Request) -> Response:
            self.jwks_requests += 1
            return JSONResponse({"keys": self.keys})

        async def token(request: Request) -> Response:
            form = {k: str(v) for k, v in (await request.form()).items()}
            form["_authorization"] = request.headers.get("authorization", "")
            self.token_requests.append(form)
            if self.token_status != 200:
                return JSONResponse({"error": "server_error"}, status_code=self.token_status)
            n = len(self.token_requests)
            if form["grant_type"] == "client_credentials":
                issued = f"cc-token-{n}"
            else:
                subject = hashlib.sha256(form["subject_token"].encode()).hexdigest()[:8]
                issued = f"exchanged-{subject}-{n}"
            return JSONResponse(
                {"access_token": issued, "token_type": "Bearer", "expires_in": self.expires_in}
            )

        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", discovery),
                Route("/jwks", jwks),
                Route("/token", token, methods=["POST"]),
            ]
        )

    def mint(
        self,
        *,
        key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | None = None,
        alg: str = "RS256",
        kid: str = "rsa-1",
        **overrides: Any,
    ) -> str:
        claims = self.claims(**overrides)
        return jwt.encode(claims, key or rsa_key("issuer"), algorithm=alg, headers={"kid": kid})

    def claims(self, **overrides: Any) -> dict[str, Any]:
        """What a token of this issuer says: alice, valid for five minutes; an override of ``None`` drops
        that claim."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": "alice",
            "iat": now,
            "exp": now + 300,
            "scope": "mcp:tools",
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value).encode())


def unsigned_token(issuer: Issuer) -> str:
    now = int(time.time())
    claims = {"iss": issuer.url, "aud": AUDIENCE, "sub": "mallory", "exp": now + 300}
    return f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment(claims)}."


def hs256_with_public_key(issuer: Issuer) -> str:
    pem = (
        rsa_key("issuer")
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    now = int(time.time())
    claims = {"iss": issuer.url, "aud": AUDIENCE, "sub": "mallory", "exp": now + 300}
    signing_input = f"{_segment({'alg': 'HS256', 'typ': 'JWT', 'kid': 'rsa-1'})}.{_segment(claims)}"
    return f"{signing_input}.{_b64(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest())}"


def challenge(response: httpx2.Response) -> dict[str, str]:
    value = response.headers["www-authenticate"]
    assert value.startswith("Bearer ")
    params: dict[str, str] = {}
    for part in value[len("Bearer ") :].split('", '):
        name, _, raw = part.partition("=")
        params[name.strip()] = raw.strip('"')
    return params
