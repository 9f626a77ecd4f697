"""The MCP endpoint's side of the embedded authorization server: which bearer tokens it accepts.

:class:`IssuedTokenValidator` takes the place of the OIDC validator in
:class:`gateway.auth.inbound.OIDCMiddleware` (same 401 / 403 / 503 answers, same RFC 9728 metadata, the
``Authorization`` header removed): a token must be signed by one of this server's keys, name this
server as ``iss`` and this endpoint as ``aud``, be unexpired, and its sign-in (``tsid``) must still be
stored. The verified token carries the sign-in's upstream access token (:class:`UpstreamBoundToken`),
which the proxy sends to the backend as its bearer unless ``disableUpstreamTokenInjection``.
:func:`build_auth_server` assembles the server from the proxy's config.
"""

from __future__ import annotations

from dataclasses import dataclass

import jwt
from prometheus_client import CollectorRegistry
from starlette.routing import Route

from api.auth_config import OIDCConfig
from api.authserver_config import AuthServerConfig
from gateway.auth.tokens import AuthUnavailableError, InvalidTokenError, ValidatedToken, token_scopes
from gateway.authserver.keys import HmacKeys, SigningKeys
from gateway.authserver.provider import AuthServerProvider
from gateway.authserver.routes import authserver_routes
from gateway.authserver.store import StoreUnavailableError, auth_store
from gateway.authserver.upstream import UpstreamProvider

__all__ = ["EmbeddedAuthServer", "IssuedTokenValidator", "UpstreamBoundToken", "build_auth_server"]

_LEEWAY_SECONDS = 30


@dataclass(frozen=True)
class UpstreamBoundToken(ValidatedToken):
    """A token of this server, with the upstream access token of its sign-in (None: not injected)."""

    upstream: str | None = None


_ERRORS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "the token has expired"),
    (jwt.ImmatureSignatureError, "the token is not valid yet"),
    (jwt.InvalidAudienceError, "the token audience is not this server"),
    (jwt.InvalidIssuerError, "the token issuer is not this server"),
    (jwt.MissingRequiredClaimError, "the token lacks a required claim"),
)


class IssuedTokenValidator:
    """Validates this server's access tokens (see the module docstring)."""

    def __init__(self, provider: AuthServerProvider, *, inject_upstream: bool) -> None:
        self.provider = provider
        self.inject_upstream = inject_upstream

    async def aclose(self) -> None:
        return None  # the provider's resources are closed by EmbeddedAuthServer

    async def validate(self, token: str) -> ValidatedToken:
        provider = self.provider
        try:
            claims = provider.keys.verify(
                token, issuer=provider.config.issuer, audience=provider.resource_url, leeway=_LEEWAY_SECONDS
            )
        except jwt.PyJWTError as err:
            for kind, message in _ERRORS:
                if isinstance(err, kind):
                    raise InvalidTokenError(message) from None
            raise InvalidTokenError("the token was not issued by this server") from None
        session = claims.get("tsid")
        if not isinstance(session, str):
            raise InvalidTokenError("the token names no sign-in")
        try:
            upstream = await provider.upstream_token(session)
        except StoreUnavailableError:
            raise AuthUnavailableError("the authorization server's store is unavailable") from None
        if upstream is None:
            raise InvalidTokenError("the sign-in behind this token has ended; sign in again")
        return UpstreamBoundToken(
            claims=claims,
            identity=str(claims["sub"]),
            scopes=token_scopes(claims),
            raw=token,
            upstream=upstream if self.inject_upstream else None,
        )


@dataclass
class EmbeddedAuthServer:
    """The pieces the proxy installs: endpoints, the inbound config and validator, and a closer."""

    provider: AuthServerProvider
    routes: list[Route]
    inbound: OIDCConfig
    """What the inbound middleware announces (RFC 9728 ``authorization_servers``, the audience)."""
    validator: IssuedTokenValidator

    async def aclose(self) -> None:
        await self.provider.upstream.aclose()
        await self.provider.store.aclose()


def build_auth_server(
    config: AuthServerConfig, *, resource_url: str, registry: CollectorRegistry | None
) -> EmbeddedAuthServer:
    """The server of ``config`` for the MCP endpoint at ``resource_url`` (``config.resourceUrl`` wins).

    Reads the signing keys and HMAC secrets now: a missing or malformed one fails the start, naming the
    field (:class:`gateway.authserver.keys.KeyConfigError`, a ValueError)."""
    resource = config.resource_url or resource_url
    keys = SigningKeys.load(config.signing_keys)
    provider = AuthServerProvider(
        config,
        resource_url=resource,
        store=auth_store(config.storage, registry),
        keys=keys,
        hmac_keys=HmacKeys.load(config.hmac_secrets),
        upstream=UpstreamProvider(config.upstream, callback_url=config.callback_url),
    )
    inbound = OIDCConfig(
        issuer=config.issuer,
        audience=resource,
        resource_url=resource,
        allowed_algorithms=keys.algorithms,
        insecure_allow_http=config.insecure_allow_http,
    )
    validator = IssuedTokenValidator(provider, inject_upstream=not config.disable_upstream_token_injection)
    return EmbeddedAuthServer(provider, authserver_routes(provider), inbound, validator)
