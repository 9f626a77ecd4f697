"""The authorization server's decisions, behind the MCP SDK's OAuth handlers.

The SDK's handlers (``mcp.server.auth.handlers``) parse and check the protocol: client authentication,
redirect-URI and scope checks against the registration, PKCE (S256 only), code expiry and the
``redirect_uri`` of the token request. :class:`AuthServerProvider` decides the rest: what is stored
(:mod:`gateway.authserver.store`, keyed by HMAC digests of the credentials), where the browser goes
(the upstream identity provider, then back through :meth:`AuthServerProvider.callback`), and what is
issued (a JWT access token for this MCP endpoint, an opaque refresh token rotated on every use).

Record kinds: ``client`` (registrations), ``signin`` (a sign-in waiting for the upstream's callback),
``code``, ``refresh`` and ``upstream`` (the upstream tokens of one sign-in, which the access and refresh
tokens name by ``tsid``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import structlog
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    RefreshToken,
    RegistrationError,
    TokenError,
    construct_redirect_uri,
)
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

from api.authserver_config import AuthServerConfig
from gateway.authserver.keys import HmacKeys, SigningKeys, new_credential
from gateway.authserver.store import AuthStore
from gateway.authserver.upstream import UpstreamError, UpstreamProvider, UpstreamTokens

__all__ = ["CLIENT_TTL_SECONDS", "AuthServerProvider", "SignInError", "StoredCode", "StoredRefreshToken"]

log = structlog.get_logger("gateway.authserver")

CLIENT_TTL_SECONDS = 30 * 24 * 3600.0
"""A registration unused (no sign-in) for this long is forgotten; the client registers again."""


class StoredCode(AuthorizationCode):
    """An authorization code with the sign-in it came from."""

    session: str


class StoredRefreshToken(RefreshToken):
    """A refresh token with the sign-in it continues."""

    session: str


@dataclass(frozen=True)
class SignInError(Exception):
    """The upstream's callback cannot complete a sign-in; ``redirect`` tells the client when known."""

    status: int
    message: str
    redirect: str | None = None


class AuthServerProvider:
    """``OAuthAuthorizationServerProvider`` of the SDK, for one proxy (see the module docstring)."""

    def __init__(
        self,
        config: AuthServerConfig,
        *,
        resource_url: str,
        store: AuthStore,
        keys: SigningKeys,
        hmac_keys: HmacKeys,
        upstream: UpstreamProvider,
    ) -> None:
        self.config = config
        self.resource_url = resource_url
        self.store = store
        self.keys = keys
        self.hmac = hmac_keys
        self.upstream = upstream
        lifespans = config.token_lifespans
        self.access_ttl = lifespans.access_token_lifespan
        self.refresh_ttl = lifespans.refresh_token_lifespan
        self.code_ttl = lifespans.auth_code_lifespan

    @property
    def scopes(self) -> list[str]:
        """What clients may register and request: the upstream's scopes and the baseline."""
        return list(
            dict.fromkeys((*self.config.upstream.requested_scopes, *self.config.baseline_client_scopes))
        )

    # -- stored credentials ------------------------------------------------------------------------------

    async def _put(self, kind: str, credential: str, record: dict[str, Any], ttl: float) -> None:
        await self.store.put(kind, self.hmac.current(credential), record, ttl)

    async def _find(self, kind: str, credential: str, *, take: bool) -> dict[str, Any] | None:
        for digest in self.hmac.digests(credential):
            record = await (self.store.take if take else self.store.get)(kind, digest)
            if record is not None:
                return record
        return None

    # -- registration ------------------------------------------------------------------------------------

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        record = await self.store.get("client", client_id)
        return OAuthClientInformationFull.model_validate(record) if record is not None else None

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        method = client_info.token_endpoint_auth_method
        if method != "none" and not self.config.allow_confidential_client_registration:
            raise RegistrationError(
                "invalid_client_metadata",
                "only public clients (token_endpoint_auth_method 'none', with PKCE) may register here",
            )
        baseline = [
            s for s in self.config.baseline_client_scopes if s not in (client_info.scope or "").split()
        ]
        if baseline:
            client_info.scope = " ".join([*(client_info.scope or "").split(), *baseline])
        record = client_info.model_dump(mode="json", exclude_none=True)
        await self.store.put("client", client_info.client_id or "", record, CLIENT_TTL_SECONDS)

    # -- authorization -----------------------------------------------------------------------------------

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        """Remember the client's request under a new state and send the browser to the upstream."""
        if params.resource is not None and params.resource.rstrip("/") != self.resource_url.rstrip("/"):
            raise AuthorizeError("invalid_target", f"this server issues tokens for {self.resource_url} only")
        state, verifier, nonce = new_credential(), new_credential(), new_credential()
        signin = {
            "client_id": client.client_id,
            "params": params.model_dump(mode="json"),
            "verifier": verifier,
            "nonce": nonce,
        }
        await self._put("signin", state, signin, self.code_ttl)
        try:
            return await self.upstream.authorization_url(state=state, verifier=verifier, nonce=nonce)
        except UpstreamError as err:
            log.warning("upstream sign-in unavailable", reason=str(err))
            raise AuthorizeError(
                "temporarily_unavailable", "the identity provider cannot be reached"
            ) from None

    async def callback(self, query: dict[str, str]) -> str:
        """The client's redirect URI with a new code, for the upstream's answer ``query``."""
        state = query.get("state")
        signin = await self._find("signin", state, take=True) if state else None
        if signin is None:
            raise SignInError(400, "unknown or expired sign-in; start the authorization again")
        params = AuthorizationParams.model_validate(signin["params"])
        redirect_uri = str(params.redirect_uri)

        def back(error: str, description: str) -> SignInError:
            location = construct_redirect_uri(
                redirect_uri, error=error, error_description=description, state=params.state
            )
            return SignInError(302, description, location)

        if "error" in query or not query.get("code"):
            raise back("access_denied", "the identity provider did not sign the user in")
        try:
            tokens = await self.upstream.exchange(query["code"], signin["verifier"])
            subject = await self.upstream.subject(tokens, signin["nonce"])
        except UpstreamError as err:
            log.warning("upstream sign-in failed", reason=str(err))
            raise back("server_error", "the identity provider's answer was refused") from None
        session = new_credential()
        await self.store.put("upstream", session, {**tokens.to_record(), "sub": subject}, self.refresh_ttl)
        code = new_credential()
        stored = StoredCode(
            code="",
            scopes=params.scopes or [],
            expires_at=time.time() + self.code_ttl,
            client_id=str(signin["client_id"]),
            code_challenge=params.code_challenge,
            redirect_uri=params.redirect_uri,
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
            resource=params.resource,
            subject=subject,
            session=session,
        )
        await self._put("code", code, stored.model_dump(mode="json"), self.code_ttl)
        client = await self.get_client(str(signin["client_id"]))
        if client is not None:  # a sign-in is activity: the registration lives on
            await self.register_client(client)
        return construct_redirect_uri(redirect_uri, code=code, state=params.state)

    # -- tokens ------------------------------------------------------------------------------------------

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> StoredCode | None:
        record = await self._find("code", authorization_code, take=False)
        if record is None:
            return None
        return StoredCode.model_validate({**record, "code": authorization_code})

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: StoredCode
    ) -> OAuthToken:
        if await self._find("code", authorization_code.code, take=True) is None:  # a racing request used it
            raise TokenError("invalid_grant", "authorization code does not exist")
        return await self._issue(
            str(client.client_id),
            authorization_code.scopes,
            authorization_code.subject or "",
            authorization_code.session,
            authorization_code.resource,
        )

    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> StoredRefreshToken | None:
        record = await self._find("refresh", refresh_token, take=False)
        if record is None:
            return None
        return StoredRefreshToken.model_validate({**record, "token": refresh_token})

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: StoredRefreshToken, scopes: list[str]
    ) -> OAuthToken:
        if await self._find("refresh", refresh_token.token, take=True) is None:  # rotated by a racing request
            raise TokenError("invalid_grant", "refresh token does not exist")
        session = await self.store.get("upstream", refresh_token.session)
        if session is None:
            raise TokenError(
                "invalid_grant", "the sign-in behind this refresh token has ended; sign in again"
            )
        await self.store.put("upstream", refresh_token.session, session, self.refresh_ttl)
        return await self._issue(
            str(client.client_id),
            scopes,
            refresh_token.subject or "",
            refresh_token.session,
            refresh_token.resource,
        )

    async def _issue(
        self, client_id: str, scopes: list[str], subject: str, session: str, resource: str | None
    ) -> OAuthToken:
        now = int(time.time())
        claims = {
            "iss": self.config.issuer,
            "sub": subject,
            "aud": self.resource_url,
            "client_id": client_id,
            "scope": " ".join(scopes),
            "iat": now,
            "nbf": now,
            "exp": now + int(self.access_ttl),
            "jti": new_credential(),
            "tsid": session,
        }
        refresh = new_credential()
        stored = StoredRefreshToken(
            token="",
            client_id=client_id,
            scopes=scopes,
            expires_at=now + int(self.refresh_ttl),
            resource=resource,
            subject=subject,
            session=session,
        )
        await self._put("refresh", refresh, stored.model_dump(mode="json"), self.refresh_ttl)
        return OAuthToken(
            access_token=self.keys.sign(claims),
            token_type="Bearer",
            expires_in=int(self.access_ttl),
            refresh_token=refresh,
            scope=" ".join(scopes) or None,
        )

    async def load_access_token(self, token: str) -> AccessToken | None:
        return None  # access tokens are JWTs, verified by gateway.authserver.resource

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        return None  # no revocation endpoint is advertised

    # -- the upstream session of a token -----------------------------------------------------------------

    async def upstream_token(self, session: str) -> str | None:
        """The upstream access token of a sign-in, refreshed when expired; None when the sign-in ended."""
        record = await self.store.get("upstream", session)
        if record is None:
            return None
        tokens = UpstreamTokens.from_record(record)
        if tokens.expires_at is None or tokens.expires_at > time.time() + 30 or tokens.refresh_token is None:
            return tokens.access_token
        try:
            fresh = await self.upstream.refresh(tokens.refresh_token)
        except UpstreamError as err:
            log.warning("upstream token refresh failed", reason=str(err))
            return tokens.access_token if tokens.expires_at > time.time() else None
        await self.store.put(
            "upstream", session, {**fresh.to_record(), "sub": record.get("sub")}, self.refresh_ttl
        )
        return fresh.access_token
