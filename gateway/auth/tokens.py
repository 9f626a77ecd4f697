"""Bearer JWT validation against one issuer (:class:`TokenValidator`).

The checks and their order are listed in docs/auth.md ("Inbound: OIDC / JWT validation"). Errors:
:class:`InvalidTokenError` (401 ``invalid_token``), :class:`InsufficientScopeError` (403
``insufficient_scope``), :class:`AuthUnavailableError` (the issuer's keys cannot be fetched: 503); their
messages are safe to send to the client (no token material, no quotes).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx2
import jwt
from jwt import PyJWK

from api.auth_config import HMAC_ALGORITHMS, OIDCConfig

from .jwks import JWKSCache, JWKSUnavailableError, SigningKeyNotFoundError
from .secrets import SecretReader

__all__ = [
    "AuthUnavailableError",
    "InsufficientScopeError",
    "InvalidTokenError",
    "TokenValidator",
    "ValidatedToken",
    "token_scopes",
]


class InvalidTokenError(Exception):
    """The token is malformed, unsigned, expired, for another audience or from another issuer."""


class InsufficientScopeError(Exception):
    """The token is valid but lacks required scopes."""

    def __init__(self, missing: tuple[str, ...]) -> None:
        super().__init__(f"token lacks required scope(s): {' '.join(missing)}")
        self.missing = missing


class AuthUnavailableError(Exception):
    """Tokens cannot be validated right now (the issuer's keys are unreachable)."""


@dataclass(frozen=True)
class ValidatedToken:
    """A token that passed every check."""

    claims: dict[str, Any]
    """The verified claims."""
    identity: str
    """Who is calling, for audit logs: ``sub``, else ``client_id``, else ``azp``."""
    scopes: frozenset[str]
    """Scopes granted by the token (``scope`` or ``scp``)."""
    raw: str
    """The token itself; only for an RFC 8693 exchange, never to be forwarded."""


def token_scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    """Scopes from the ``scope`` claim (space separated) or ``scp`` (string or list)."""
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            return frozenset(value.split())
        if isinstance(value, list):
            return frozenset(str(v) for v in value)
    return frozenset()


def _identity(claims: Mapping[str, Any]) -> str:
    for name in ("sub", "client_id", "azp"):
        value = claims.get(name)
        if isinstance(value, str) and value:
            return value
    return "unknown"


_ERRORS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "the token has expired"),
    (jwt.ImmatureSignatureError, "the token is not valid yet (nbf or iat in the future)"),
    (jwt.InvalidAudienceError, "the token audience is not this server"),
    (jwt.InvalidIssuerError, "the token issuer is not trusted here"),
    (jwt.InvalidIssuedAtError, "the token iat claim is invalid"),
    (jwt.InvalidSignatureError, "the token signature does not verify"),
    (jwt.InvalidAlgorithmError, "the token algorithm is not allowed"),
)


def issuer_client(config: OIDCConfig) -> httpx2.AsyncClient:
    """The client of the discovery and JWKS requests: TLS verified with ``caBundlePath`` when set (a
    file that cannot be read is a configuration error: it raises ValueError naming it)."""
    if config.ca_bundle_path is None:
        return httpx2.AsyncClient(timeout=10.0)
    try:
        context = ssl.create_default_context(cafile=config.ca_bundle_path)
    except (OSError, ssl.SSLError) as err:
        raise ValueError(
            f"oidc.caBundlePath {config.ca_bundle_path}: cannot be read as PEM CAs ({err})"
        ) from None
    return httpx2.AsyncClient(timeout=10.0, verify=context)


def subject_allowed(subject: object, allowed: str | None) -> bool:
    """The token's ``sub`` is ``allowed``, or starts with it when it ends with ``:`` (no rule: any)."""
    if allowed is None:
        return True
    if not isinstance(subject, str):
        return False
    return subject.startswith(allowed) if allowed.endswith(":") else subject == allowed


class TokenValidator:
    """Validates bearer JWTs for one :class:`OIDCConfig`.

    ``http`` is used for discovery and JWKS fetches (give a shared client; one is created, and closed by
    :meth:`aclose`, when omitted). ``clock`` (wall seconds) is used for ``iat`` checks in tests.
    """

    def __init__(
        self,
        config: OIDCConfig,
        *,
        http: httpx2.AsyncClient | None = None,
        jwks: JWKSCache | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._own_http = http is None and jwks is None
        self._http = http if http is not None else issuer_client(config)
        self.jwks = jwks if jwks is not None else JWKSCache(config, http=self._http)
        self._shared_secret = (
            SecretReader(config.shared_secret, field="sharedSecret", environ=environ)
            if config.shared_secret is not None
            else None
        )
        self._clock = clock

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    async def validate(self, token: str) -> ValidatedToken:
        """Return the verified token or raise one of this module's errors."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidTokenError("the token is not a well-formed JWT") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.config.allowed_algorithms:
            raise InvalidTokenError(f"the token algorithm {str(alg)[:20]} is not allowed")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidTokenError("the token kid header is not a string")
        key = await self._key(kid, alg)
        claims = self._decode(token, key, alg)
        for name in ("exp", "nbf", "iat"):  # RFC 7519 NumericDate; PyJWT would take "1700000000" too
            value = claims.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise InvalidTokenError(f"the token {name} claim is not a number")
        iat = claims.get("iat")
        if isinstance(iat, int | float) and iat > self._clock() + self.config.clock_skew_seconds:
            raise InvalidTokenError("the token is not valid yet (nbf or iat in the future)")
        if not subject_allowed(claims.get("sub"), self.config.subject):
            raise InvalidTokenError("the token subject is not allowed by this server")
        scopes = token_scopes(claims)
        missing = tuple(s for s in self.config.required_scopes if s not in scopes)
        if missing:
            raise InsufficientScopeError(missing)
        return ValidatedToken(claims=claims, identity=_identity(claims), scopes=scopes, raw=token)

    async def _key(self, kid: str | None, alg: str) -> PyJWK | bytes:
        if alg in HMAC_ALGORITHMS:
            if self._shared_secret is None:  # config validation forbids this; keep the guard anyway
                raise InvalidTokenError("the token algorithm is not allowed")
            try:
                return self._shared_secret.read().encode()
            except RuntimeError as err:
                raise AuthUnavailableError(str(err)) from None
        try:
            return await self.jwks.get_key(kid, alg)
        except SigningKeyNotFoundError:
            raise InvalidTokenError("no signing key of the issuer matches the token kid and alg") from None
        except JWKSUnavailableError:
            raise AuthUnavailableError("the issuer's signing keys cannot be fetched right now") from None

    def _decode(self, token: str, key: PyJWK | bytes, alg: str) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.config.audience,
                issuer=self.config.issuer,
                leeway=self.config.clock_skew_seconds,
                options={"require": ["exp", "iss", "aud"], "verify_signature": True},
            )
        except jwt.MissingRequiredClaimError as err:
            raise InvalidTokenError(f"the token has no {err.claim} claim") from None
        except jwt.PyJWTError as err:
            for kind, message in _ERRORS:
                if isinstance(err, kind):
                    raise InvalidTokenError(message) from None
            raise InvalidTokenError("the token is invalid") from None
