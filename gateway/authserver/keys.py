"""The authorization server's keys: JWT signing keys (first signs, all verify) and HMAC secrets.

Signing keys are PEM private keys (RSA: RS256; EC P-256 / P-384 / P-521: ES256 / ES384 / ES512) read
from secret references; each key's ``kid`` is its RFC 7638 thumbprint, so a key keeps its id across
restarts and replicas. With no key configured one ephemeral EC key is generated (tokens die with the
process; a warning says so). HMAC secrets key the storage of opaque credentials (codes, refresh tokens,
sign-in states): the store holds ``HMAC(secret, credential)``, never the credential, and a lookup tries
every configured secret so a rotation keeps outstanding credentials valid.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from api.auth_config import SecretValueSource
from gateway.auth.secrets import SecretReader

__all__ = ["MIN_HMAC_BYTES", "HmacKeys", "KeyConfigError", "SigningKey", "SigningKeys"]

log = structlog.get_logger("gateway.authserver.keys")

MIN_HMAC_BYTES = 32
"""The current HMAC secret's minimum length (ToolHive's rule)."""

_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


class KeyConfigError(ValueError):
    """A configured key or secret cannot be used; the message names the field and the fix."""


@dataclass(frozen=True)
class SigningKey:
    """One private key with its algorithm and public JWK."""

    kid: str
    alg: str
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    public_jwk: dict[str, Any]


def _thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638: SHA-256 of the required members in lexicographic order, base64url without padding."""
    required = ("crv", "kty", "x", "y") if jwk["kty"] == "EC" else ("e", "kty", "n")
    canonical = json.dumps({k: jwk[k] for k in required}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def _signing_key(private: object, field: str) -> SigningKey:
    if isinstance(private, rsa.RSAPrivateKey):
        if private.key_size < 2048:
            raise KeyConfigError(f"{field}: RSA keys need at least 2048 bits (got {private.key_size})")
        alg, jwk = "RS256", json.loads(RSAAlgorithm.to_jwk(private.public_key()))
    elif isinstance(private, ec.EllipticCurvePrivateKey) and private.curve.name in _EC_ALGORITHMS:
        alg, jwk = _EC_ALGORITHMS[private.curve.name], json.loads(ECAlgorithm.to_jwk(private.public_key()))
    else:
        raise KeyConfigError(f"{field}: use an RSA or EC (P-256, P-384, P-521) private key in PEM")
    kid = _thumbprint(jwk)
    return SigningKey(kid, alg, private, {**jwk, "kid": kid, "alg": alg, "use": "sig"})


class SigningKeys:
    """The keys tokens are signed and verified with (see the module docstring)."""

    def __init__(self, keys: list[SigningKey]) -> None:
        if not keys:
            raise KeyConfigError("no signing key")
        self.keys = keys
        self._by_kid = {key.kid: key for key in keys}

    @classmethod
    def load(cls, refs: tuple[SecretValueSource, ...]) -> SigningKeys:
        if not refs:
            log.warning(
                "authServer.signingKeys is empty: signing with an ephemeral key; issued tokens stop "
                "verifying when this process restarts and differ between replicas (configure signingKeys)"
            )
            return cls([_signing_key(ec.generate_private_key(ec.SECP256R1()), "ephemeral key")])
        keys = []
        for index, ref in enumerate(refs):
            field = f"authServer.signingKeys[{index}]"
            pem = SecretReader(ref, field=field).read()
            try:
                private = serialization.load_pem_private_key(pem.encode(), password=None)
            except (ValueError, TypeError) as err:
                raise KeyConfigError(
                    f"{field}: not an unencrypted PEM private key ({type(err).__name__})"
                ) from None
            keys.append(_signing_key(private, field))
        return cls(keys)

    @property
    def algorithms(self) -> tuple[str, ...]:
        return tuple(sorted({key.alg for key in self.keys}))

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.public_jwk for key in self.keys]}

    def sign(self, claims: Mapping[str, Any]) -> str:
        key = self.keys[0]
        return jwt.encode(
            dict(claims), key.private, algorithm=key.alg, headers={"kid": key.kid, "typ": "at+jwt"}
        )

    def verify(self, token: str, *, issuer: str, audience: str, leeway: float) -> dict[str, Any]:
        """The verified claims; :class:`jwt.PyJWTError` when the token is not ours or not valid now."""
        header = jwt.get_unverified_header(token)
        key = self._by_kid.get(str(header.get("kid")))
        if key is None or header.get("alg") != key.alg:
            raise jwt.InvalidSignatureError("no signing key of this server matches the token kid and alg")
        claims: dict[str, Any] = jwt.decode(
            token,
            key.private.public_key(),
            algorithms=[key.alg],
            audience=audience,
            issuer=issuer,
            leeway=leeway,
            options={"require": ["exp", "iss", "aud", "sub", "iat"]},
        )
        return claims


class HmacKeys:
    """Secrets keying stored opaque credentials (see the module docstring)."""

    def __init__(self, secrets_: list[bytes]) -> None:
        self.secrets = secrets_

    @classmethod
    def load(cls, refs: tuple[SecretValueSource, ...]) -> HmacKeys:
        if not refs:
            log.warning(
                "authServer.hmacSecrets is empty: using an ephemeral secret; authorization codes and refresh "
                "tokens stop working when this process restarts (configure hmacSecrets)"
            )
            return cls([secrets.token_bytes(MIN_HMAC_BYTES)])
        values = [
            SecretReader(ref, field=f"authServer.hmacSecrets[{i}]").read().encode()
            for i, ref in enumerate(refs)
        ]
        if len(values[0]) < MIN_HMAC_BYTES:
            raise KeyConfigError(
                f"authServer.hmacSecrets[0]: the current secret needs at least {MIN_HMAC_BYTES} random bytes "
                f"(got {len(values[0])}); generate one with `openssl rand -base64 48`"
            )
        return cls(values)

    def digests(self, credential: str) -> list[str]:
        """The storage keys of ``credential`` under each secret, the current one first."""
        return [hmac.new(secret, credential.encode(), hashlib.sha256).hexdigest() for secret in self.secrets]

    def current(self, credential: str) -> str:
        return self.digests(credential)[0]


def new_credential() -> str:
    """A fresh opaque credential: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)
