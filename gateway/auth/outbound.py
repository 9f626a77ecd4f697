"""Credentials the proxy and gateway send to their backends (never the client's own token).

One interface, :class:`CredentialProvider` (``await provider.headers(inbound_token)``, then ``aclose()``),
built by :func:`build_outbound_provider` from ``api.auth_config``; each type's caching and refresh:
docs/auth.md, "Outbound: credentials toward the backend". ``inbound_token`` is only used by
``tokenExchange``, as the RFC 8693 subject token; no provider ever returns it. Errors are
:class:`OutboundAuthError`, naming the field to fix.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import httpx2

from api.auth_config import (
    BearerTokenAuth,
    HeaderForwardConfig,
    HeaderInjectionAuth,
    OAuth2ClientCredentialsAuth,
    OutboundAuthConfig,
    TokenExchangeAuth,
)

from .secrets import SecretReader, SecretUnavailableError
from .token_endpoint import Backoff, IssuedToken, OutboundAuthError, TokenEndpoint, TokenEndpointError

__all__ = [
    "Backoff",
    "ClientCredentialsProvider",
    "CompositeProvider",
    "CredentialProvider",
    "OutboundAuthError",
    "StaticHeaderProvider",
    "SubjectBearerProvider",
    "TokenEndpointError",
    "TokenExchangeProvider",
    "build_outbound_provider",
]


class CredentialProvider(Protocol):
    """Produces the headers that authenticate one backend connection or request."""

    async def headers(self, inbound_token: str | None) -> dict[str, str]: ...

    async def aclose(self) -> None: ...


class StaticHeaderProvider:
    """Fixed headers: plaintext values and values read from secret references."""

    def __init__(
        self,
        plain: Mapping[str, str] | None = None,
        secret: Sequence[tuple[str, SecretReader, str]] = (),
    ) -> None:
        """``secret`` is a list of ``(header name, reader, value prefix)``, e.g. ``"Bearer "``."""
        self._plain = dict(plain or {})
        self._secret = tuple(secret)

    async def headers(self, inbound_token: str | None) -> dict[str, str]:
        result = dict(self._plain)
        for name, reader, prefix in self._secret:
            try:
                value = reader.read()
            except SecretUnavailableError as err:
                raise OutboundAuthError(str(err)) from None
            if "\r" in value or "\n" in value:
                raise OutboundAuthError(f"{reader.field}: the secret value contains a line break; remove it")
            result[name] = prefix + value
        return result

    async def aclose(self) -> None:
        return None


class _TokenProviderBase:
    """A credential from a token endpoint; ``own_http`` is closed by :meth:`aclose`."""

    def __init__(
        self,
        config: OAuth2ClientCredentialsAuth | TokenExchangeAuth,
        endpoint: TokenEndpoint,
        *,
        own_http: httpx2.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoint = endpoint
        self._own_http = own_http
        self._header = _credential_header(config)
        self._clock = clock
        self._lock = asyncio.Lock()

    def _header_value(self, token: IssuedToken) -> dict[str, str]:
        if self._header.lower() == "authorization":
            return {"Authorization": f"Bearer {token.access_token}"}
        return {self._header: token.access_token}

    async def aclose(self) -> None:
        if self._own_http is not None:
            await self._own_http.aclose()


class ClientCredentialsProvider(_TokenProviderBase):
    """OAuth 2.0 client credentials grant with a cached, proactively refreshed token."""

    def __init__(self, config: OAuth2ClientCredentialsAuth, endpoint: TokenEndpoint, **options: Any) -> None:
        super().__init__(config, endpoint, **options)
        self.config = config
        self._token: IssuedToken | None = None

    def _fresh(self, token: IssuedToken | None) -> bool:
        return token is not None and self._clock() < token.expires_at - self.config.refresh_margin_seconds

    async def headers(self, inbound_token: str | None) -> dict[str, str]:
        token = self._token
        if not self._fresh(token):
            token = await self._refresh()
        assert token is not None
        return self._header_value(token)

    async def _refresh(self) -> IssuedToken:
        async with self._lock:
            if self._token is not None and self._fresh(self._token):
                return self._token  # another caller refreshed while we waited
            form = {"grant_type": "client_credentials"}
            if self.config.scopes:
                form["scope"] = " ".join(self.config.scopes)
            if self.config.audience:
                form["audience"] = self.config.audience
            try:
                self._token = await self.endpoint.request(form)
            except OutboundAuthError:
                # Inside the refresh margin the old token still works: keep serving it.
                if self._token is not None and self._clock() < self._token.expires_at:
                    return self._token
                raise
            return self._token


class TokenExchangeProvider(_TokenProviderBase):
    """RFC 8693 token exchange of the validated inbound token, cached per subject token."""

    MAX_CACHED = 1024
    """Subject tokens whose exchanged token is kept (least recently used dropped first)."""

    def __init__(self, config: TokenExchangeAuth, endpoint: TokenEndpoint, **options: Any) -> None:
        super().__init__(config, endpoint, **options)
        self.config = config
        self._cache: OrderedDict[str, IssuedToken] = OrderedDict()
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    async def headers(self, inbound_token: str | None) -> dict[str, str]:
        if not inbound_token:
            raise OutboundAuthError(
                "tokenExchange needs the validated inbound token as subject token, but the request has none; "
                "enable inbound OIDC (oidcConfig) on this proxy or use another outbound auth type"
            )
        key = hashlib.sha256(inbound_token.encode()).hexdigest()
        cached = self._cache.get(key)
        if cached is not None and self._clock() < cached.expires_at - self.config.refresh_margin_seconds:
            self._cache.move_to_end(key)
            return self._header_value(cached)
        return self._header_value(await self._exchange(key, inbound_token))

    async def _exchange(self, key: str, subject_token: str) -> IssuedToken:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                cached = self._cache.get(key)
                if (
                    cached is not None
                    and self._clock() < cached.expires_at - self.config.refresh_margin_seconds
                ):
                    return cached  # a concurrent caller exchanged this subject token while we waited
                token = await self.endpoint.request(self._form(subject_token))
                self._cache[key] = token
                self._cache.move_to_end(key)
                while len(self._cache) > self.MAX_CACHED:
                    self._cache.popitem(last=False)
                return token
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def _form(self, subject_token: str) -> dict[str, str]:
        form = {
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": subject_token,
            "subject_token_type": self.config.subject_token_type,
            "requested_token_type": self.config.requested_token_type,
        }
        if self.config.audience:
            form["audience"] = self.config.audience
        if self.config.scopes:
            form["scope"] = " ".join(self.config.scopes)
        return form


class SubjectBearerProvider:
    """The caller's token given to :meth:`headers` as the bearer: the upstream access token the embedded
    authorization server stored for the caller's sign-in (never the caller's own token)."""

    async def headers(self, inbound_token: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {inbound_token}"} if inbound_token else {}

    async def aclose(self) -> None:
        return None


class CompositeProvider:
    """Merges providers in order; later providers win on the same header (credentials go last)."""

    def __init__(self, providers: Sequence[CredentialProvider]) -> None:
        self.providers = tuple(providers)

    async def headers(self, inbound_token: str | None) -> dict[str, str]:
        result: dict[str, str] = {}
        for provider in self.providers:
            result.update(await provider.headers(inbound_token))
        return result

    async def aclose(self) -> None:
        for provider in self.providers:
            await provider.aclose()


def _forward_provider(config: HeaderForwardConfig, environ: Mapping[str, str] | None) -> StaticHeaderProvider:
    secret = [
        (
            entry.header_name,
            SecretReader(
                entry.value_secret_ref,
                field=f"headerForward.addHeadersFromSecret[{index}].valueSecretRef",
                environ=environ,
            ),
            "",
        )
        for index, entry in enumerate(config.add_headers_from_secret)
    ]
    return StaticHeaderProvider(config.add_plaintext_headers, secret)


def _credential_header(config: OutboundAuthConfig) -> str:
    if isinstance(config, HeaderInjectionAuth):
        return config.header_name
    if isinstance(config, TokenExchangeAuth):
        return config.external_token_header_name or "Authorization"
    return "Authorization"


def build_outbound_provider(
    config: OutboundAuthConfig | None,
    *,
    header_forward: HeaderForwardConfig | None = None,
    http: httpx2.AsyncClient | None = None,
    environ: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.monotonic,
    retry_backoff: Backoff | None = None,
    cooldown_backoff: Backoff | None = None,
) -> CredentialProvider:
    """The provider for one backend. ``http`` is shared when given; otherwise each token provider owns
    one (closed by ``aclose``). Raises :class:`OutboundAuthError` when ``headerForward`` and the
    credential set the same header."""
    providers: list[CredentialProvider] = []
    if header_forward is not None:
        forward = _forward_provider(header_forward, environ)
        if config is not None:
            header = _credential_header(config).lower()
            names = {n.lower() for n in header_forward.add_plaintext_headers} | {
                e.header_name.lower() for e in header_forward.add_headers_from_secret
            }
            if header in names:
                raise OutboundAuthError(
                    f"headerForward sets {header!r}, which the {config.type} credential also sets; "
                    "remove it from headerForward"
                )
        providers.append(forward)
    if isinstance(config, HeaderInjectionAuth):
        reader = SecretReader(
            config.value_secret_ref, field="headerInjection.valueSecretRef", environ=environ
        )
        providers.append(StaticHeaderProvider(secret=[(config.header_name, reader, "")]))
    elif isinstance(config, BearerTokenAuth):
        reader = SecretReader(config.token_secret_ref, field="bearerToken.tokenSecretRef", environ=environ)
        providers.append(StaticHeaderProvider(secret=[("Authorization", reader, "Bearer ")]))
    elif config is not None:
        client = http if http is not None else httpx2.AsyncClient(timeout=10.0)
        own_http = None if http is not None else client
        ref, field = config.client_secret_ref, f"{config.type}.clientSecretRef"
        secret = SecretReader(ref, field=field, environ=environ) if ref is not None else None
        endpoint = TokenEndpoint(
            token_url=config.token_url,
            kind=config.type,
            client_id=config.client_id,
            client_secret=_secret_getter(secret),
            client_auth_method=config.client_auth_method,
            http=client,
            retry_backoff=retry_backoff,
            cooldown_backoff=cooldown_backoff,
            clock=clock,
        )
        if isinstance(config, OAuth2ClientCredentialsAuth):
            providers.append(ClientCredentialsProvider(config, endpoint, own_http=own_http, clock=clock))
        else:
            providers.append(TokenExchangeProvider(config, endpoint, own_http=own_http, clock=clock))
    return providers[0] if len(providers) == 1 else CompositeProvider(providers)


def _secret_getter(reader: SecretReader | None) -> Callable[[], str] | None:
    if reader is None:
        return None

    def read() -> str:
        try:
            return reader.read()
        except SecretUnavailableError as err:
            raise TokenEndpointError(str(err), transient=False) from None

    return read
