"""The issuer's signing keys: OIDC discovery, JWKS fetch, caching and rate-limited refetch.

:class:`JWKSCache` answers "which public key verifies a token with this ``kid`` and ``alg``"; caching and
rotation behave as docs/auth.md ("Key rotation") says. Only asymmetric keys of the token's algorithm
family are taken from a JWKS; a symmetric (``oct``) JWK is ignored.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2
import structlog
from jwt import PyJWK
from jwt.exceptions import PyJWKError

from api.auth_config import OIDCConfig, is_loopback_url

from .metrics import JWKS_FETCHES

__all__ = ["JWKSCache", "JWKSUnavailableError", "SigningKeyNotFoundError"]

log = structlog.get_logger("gateway.auth.jwks")

_EC_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}


class JWKSUnavailableError(RuntimeError):
    """The issuer's keys could not be fetched (and none are cached)."""


class SigningKeyNotFoundError(LookupError):
    """No key of the issuer matches the token's ``kid`` / ``alg``."""


def _key_matches(jwk: dict[str, Any], alg: str) -> bool:
    if jwk.get("use", "sig") != "sig":
        return False
    if "alg" in jwk and jwk["alg"] != alg:
        return False
    kty = jwk.get("kty")
    if alg.startswith(("RS", "PS")):
        return kty == "RSA"
    if alg in _EC_CURVES:
        return kty == "EC" and jwk.get("crv") == _EC_CURVES[alg]
    if alg == "EdDSA":
        return kty == "OKP"
    return False  # symmetric or unknown: never from a JWKS


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()


class JWKSCache:
    """Keys of one issuer. ``http`` is the only network seam; ``clock`` is monotonic seconds."""

    def __init__(
        self,
        config: OIDCConfig,
        *,
        http: httpx2.AsyncClient,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._http = http
        self._clock = clock
        self._jwks_url = config.jwks_url
        self._keys: list[dict[str, Any]] = []
        self._parsed: dict[tuple[int, str], PyJWK] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last fetch attempt, successful or not
        self._generation = 0
        self._lock = asyncio.Lock()

    @property
    def fetch_count(self) -> int:
        """How many fetch attempts were made (for tests and diagnostics)."""
        return self._generation

    async def get_key(self, kid: str | None, alg: str) -> PyJWK:
        """The verification key for a token header; refetches once on an unknown ``kid``."""
        now = self._clock()
        if self._fetched_at is None or now - self._fetched_at >= self._config.jwks_cache_seconds:
            await self._refresh()
        key = self._find(kid, alg)
        if key is not None:
            return key
        await self._refresh()
        key = self._find(kid, alg)
        if key is None:
            raise SigningKeyNotFoundError(
                f"no signing key of the issuer matches kid {kid!r} and alg {alg}"
                if kid is not None
                else f"token has no kid and the issuer does not publish exactly one {alg} key"
            )
        return key

    def _find(self, kid: str | None, alg: str) -> PyJWK | None:
        candidates = [
            (i, k)
            for i, k in enumerate(self._keys)
            if _key_matches(k, alg) and (kid is None or k.get("kid") == kid)
        ]
        if len(candidates) != 1:
            return None
        index, jwk = candidates[0]
        cache_key = (index, alg)
        if cache_key not in self._parsed:
            try:
                self._parsed[cache_key] = PyJWK(jwk, algorithm=alg)
            except PyJWKError:
                return None
        return self._parsed[cache_key]

    async def _refresh(self) -> None:
        """Fetch the JWKS unless one was attempted within the minimum interval (single flight)."""
        seen = self._generation
        async with self._lock:
            if self._generation != seen:
                return  # another caller fetched while we waited
            now = self._clock()
            recently = (
                self._attempted_at is not None
                and now - self._attempted_at < self._config.jwks_min_refresh_seconds
            )
            if recently:
                if self._fetched_at is None:
                    raise JWKSUnavailableError(
                        "the issuer's signing keys are unavailable (the last fetch failed); retrying shortly"
                    )
                return
            self._attempted_at = now
            self._generation += 1
            try:
                keys = await self._fetch()
            except JWKSUnavailableError as err:
                JWKS_FETCHES.labels(result="error").inc()
                log.warning("jwks fetch failed", issuer=self._config.issuer, error=str(err))
                if self._fetched_at is None:
                    raise
                return
            JWKS_FETCHES.labels(result="ok").inc()
            self._keys = keys
            self._parsed = {}
            self._fetched_at = self._clock()

    async def _fetch(self) -> list[dict[str, Any]]:
        if self._jwks_url is None:
            self._jwks_url = await self._discover()
        document = await self._get_json(self._jwks_url, "jwksUrl")
        keys = document.get("keys")
        if not isinstance(keys, list):
            raise JWKSUnavailableError(f"JWKS at {self._jwks_url} has no 'keys' list")
        return [k for k in keys if isinstance(k, dict)]

    async def _discover(self) -> str:
        url = self._config.issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = await self._get_json(url, "issuer")
        if document.get("issuer") != self._config.issuer:
            raise JWKSUnavailableError(
                f"discovery document at {url} names issuer {document.get('issuer')!r}, not "
                f"{self._config.issuer!r}; fix the issuer field (it must match exactly)"
            )
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise JWKSUnavailableError(f"discovery document at {url} has no jwks_uri; set jwksUrl explicitly")
        if jwks_uri.startswith("http://") and not (
            self._config.insecure_allow_http or is_loopback_url(jwks_uri)
        ):
            raise JWKSUnavailableError(f"discovered jwks_uri {jwks_uri} is not https; refusing to use it")
        return jwks_uri

    def _headers(self, url: str) -> dict[str, str]:
        """``Accept``, and the bearer token of ``jwksAuthTokenPath`` read now (the kubelet rotates it), for
        the issuer's and the configured JWKS URL's origin only: a discovered ``jwks_uri`` elsewhere never
        receives it."""
        # RFC 7517's media type too: the Kubernetes API server answers 406 to a JWKS request for JSON only.
        headers = {"Accept": "application/json, application/jwk-set+json"}
        path = self._config.jwks_auth_token_path
        trusted = {_origin(u) for u in (self._config.issuer, self._config.jwks_url) if u is not None}
        if path is not None and _origin(url) in trusted:
            try:
                token = Path(path).read_text().strip()
            except OSError as err:
                raise JWKSUnavailableError(f"cannot read jwksAuthTokenPath {path}: {err.strerror}") from None
            headers["Authorization"] = f"Bearer {token}"
        return headers

    async def _get_json(self, url: str, field: str) -> dict[str, Any]:
        try:
            response = await self._http.get(url, headers=self._headers(url))
        except httpx2.HTTPError as err:
            raise JWKSUnavailableError(
                f"cannot fetch {url} (from {field}): {type(err).__name__}: {err}"
            ) from None
        if response.status_code != 200:
            raise JWKSUnavailableError(f"{url} (from {field}) answered HTTP {response.status_code}")
        try:
            document = response.json()
        except ValueError:
            raise JWKSUnavailableError(f"{url} (from {field}) did not return JSON") from None
        if not isinstance(document, dict):
            raise JWKSUnavailableError(f"{url} (from {field}) did not return a JSON object")
        return document
