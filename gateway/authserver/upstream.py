"""The upstream identity provider: where users sign in, and whose tokens the backend receives.

``oidc`` providers are discovered from ``issuerUrl`` (``/.well-known/openid-configuration``, its
``issuer`` must match exactly); ``oauth2`` providers name their endpoints. Every URL is checked by the
SSRF guard (:func:`gateway.backends.ssrf.check_endpoint`) right before it is contacted, redirects are
never followed, and ``http://`` is refused off loopback unless ``insecureAllowHttp``. The sign-in uses
PKCE (S256), a ``state`` and, for OIDC, a ``nonce`` that the ID token must carry; the user is the ID
token's ``subjectClaim`` (``oidc``) or a digest of the access token (``oauth2``: no identity without a
userinfo endpoint, so a stable, non-personal one is synthesised as ToolHive does).
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx2

from api.auth_config import OIDCConfig, is_loopback_url
from api.authserver_config import UpstreamConfig
from gateway.auth.secrets import SecretReader
from gateway.auth.tokens import AuthUnavailableError, InvalidTokenError, TokenValidator
from gateway.backends.ssrf import EndpointRefusedError, Resolver, check_endpoint, system_resolver

__all__ = ["UpstreamError", "UpstreamProvider", "UpstreamTokens", "pkce_challenge"]


class UpstreamError(RuntimeError):
    """The upstream could not be reached or refused; the message is safe to log (no token in it)."""


@dataclass(frozen=True)
class UpstreamTokens:
    """What the upstream token endpoint answered."""

    access_token: str
    refresh_token: str | None
    expires_at: float | None
    """Wall-clock seconds; None when the upstream did not say."""
    id_token: str | None = None

    def to_record(self) -> dict[str, Any]:
        return {"at": self.access_token, "rt": self.refresh_token, "exp": self.expires_at}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> UpstreamTokens:
        return cls(str(record["at"]), record.get("rt"), record.get("exp"))


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 S256."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@dataclass(frozen=True)
class _Endpoints:
    authorization: str
    token: str
    jwks: str | None = None


class UpstreamProvider:
    """One upstream (see the module docstring); ``http`` and ``resolver`` are the network seams."""

    def __init__(
        self,
        config: UpstreamConfig,
        *,
        callback_url: str,
        http: httpx2.AsyncClient | None = None,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.config = config
        self.callback_url = callback_url
        self._http = http if http is not None else httpx2.AsyncClient(timeout=10.0, follow_redirects=False)
        self._own_http = http is None
        self._resolver = resolver
        self._endpoints: _Endpoints | None = None
        self._validator: TokenValidator | None = None
        self._secret = (
            SecretReader(config.client_secret_ref, field="authServer.upstream.clientSecretRef")
            if config.client_secret_ref is not None
            else None
        )

    async def aclose(self) -> None:
        if self._validator is not None:
            await self._validator.aclose()
        if self._own_http:
            await self._http.aclose()

    async def _checked(self, url: str, field: str) -> str:
        if url.startswith("http://") and not (self.config.insecure_allow_http or is_loopback_url(url)):
            raise UpstreamError(f"{field} {url} is not https; refusing it (insecureAllowHttp allows it)")
        try:
            await check_endpoint(
                url, allow_private=self.config.allow_private_endpoint, resolver=self._resolver
            )
        except EndpointRefusedError as err:
            raise UpstreamError(f"{field}: {err}") from None
        return url

    async def endpoints(self) -> _Endpoints:
        if self._endpoints is not None:
            return self._endpoints
        config = self.config
        if config.type == "oauth2":
            assert config.authorization_endpoint is not None and config.token_endpoint is not None
            self._endpoints = _Endpoints(config.authorization_endpoint, config.token_endpoint)
            return self._endpoints
        assert config.issuer_url is not None
        url = await self._checked(
            config.issuer_url + "/.well-known/openid-configuration", "upstream.issuerUrl"
        )
        document = await self._json(self._http.get(url, headers={"Accept": "application/json"}), url)
        if document.get("issuer") != config.issuer_url:
            raise UpstreamError(
                f"the discovery document at {url} names issuer {document.get('issuer')!r}, not "
                f"{config.issuer_url!r}; set upstream issuerUrl to exactly the provider's issuer"
            )
        names = ("authorization_endpoint", "token_endpoint", "jwks_uri")
        values = [document.get(name) for name in names]
        if not all(isinstance(value, str) for value in values):
            raise UpstreamError(f"the discovery document at {url} lacks one of {', '.join(names)}")
        authorization, token, jwks = (str(value) for value in values)
        self._endpoints = _Endpoints(authorization, token, jwks)
        return self._endpoints

    async def authorization_url(self, *, state: str, verifier: str, nonce: str) -> str:
        endpoints = await self.endpoints()
        await self._checked(endpoints.authorization, "upstream authorization endpoint")
        params = {
            **self.config.additional_authorization_params,
            "response_type": "code",
            "client_id": self.config.client_id,
            "redirect_uri": self.callback_url,
            "state": state,
            "code_challenge": pkce_challenge(verifier),
            "code_challenge_method": "S256",
        }
        if self.config.requested_scopes:
            params["scope"] = " ".join(self.config.requested_scopes)
        if self.config.type == "oidc":
            params["nonce"] = nonce
        separator = "&" if "?" in endpoints.authorization else "?"
        return f"{endpoints.authorization}{separator}{urlencode(params)}"

    async def exchange(self, code: str, verifier: str) -> UpstreamTokens:
        """The upstream's tokens for the code its callback delivered."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.callback_url,
            "code_verifier": verifier,
        }
        return await self._token_request(form)

    async def refresh(self, refresh_token: str) -> UpstreamTokens:
        tokens = await self._token_request({"grant_type": "refresh_token", "refresh_token": refresh_token})
        if tokens.refresh_token is None:  # the upstream kept the refresh token as it was
            return UpstreamTokens(tokens.access_token, refresh_token, tokens.expires_at, tokens.id_token)
        return tokens

    async def _token_request(self, form: dict[str, str]) -> UpstreamTokens:
        endpoints = await self.endpoints()
        url = await self._checked(endpoints.token, "upstream token endpoint")
        headers = {"Accept": "application/json"}
        if self._secret is not None:
            basic = httpx2.BasicAuth(self.config.client_id, self._secret.read())
            request = self._http.post(url, data=form, auth=basic, headers=headers)
        else:
            form = {**form, "client_id": self.config.client_id}
            request = self._http.post(url, data=form, headers=headers)
        document = await self._json(request, url)
        access = document.get("access_token")
        if not isinstance(access, str) or not access:
            raise UpstreamError(f"the upstream token endpoint {url} answered no access_token")
        expires_in = document.get("expires_in")
        expires_at = time.time() + float(expires_in) if isinstance(expires_in, int | float) else None
        refresh, id_token = document.get("refresh_token"), document.get("id_token")
        return UpstreamTokens(
            access,
            refresh if isinstance(refresh, str) else None,
            expires_at,
            id_token if isinstance(id_token, str) else None,
        )

    async def _json(self, pending: Any, url: str) -> dict[str, Any]:
        try:
            response: httpx2.Response = await pending
        except httpx2.HTTPError as err:
            raise UpstreamError(f"cannot reach {url}: {type(err).__name__}") from None
        if response.status_code != 200:
            error = ""
            try:
                body = response.json()
                error = f" ({body.get('error')})" if isinstance(body, dict) and "error" in body else ""
            except ValueError:
                pass
            raise UpstreamError(f"{url} answered HTTP {response.status_code}{error}")
        try:
            document = response.json()
        except ValueError:
            raise UpstreamError(f"{url} did not answer JSON") from None
        if not isinstance(document, dict):
            raise UpstreamError(f"{url} did not answer a JSON object")
        return document

    async def subject(self, tokens: UpstreamTokens, nonce: str) -> str:
        """Who signed in: the verified ID token's subject claim (``oidc``), else a digest of the token."""
        if self.config.type == "oauth2":
            return "oauth2:" + hashlib.sha256(tokens.access_token.encode()).hexdigest()[:32]
        if tokens.id_token is None:
            raise UpstreamError("the upstream answered no id_token; request the openid scope")
        validator = await self._id_token_validator()
        try:
            claims = (await validator.validate(tokens.id_token)).claims
        except (InvalidTokenError, AuthUnavailableError) as err:
            raise UpstreamError(f"the upstream ID token was refused: {err}") from None
        if claims.get("nonce") != nonce:
            raise UpstreamError("the upstream ID token does not carry this sign-in's nonce")
        subject = claims.get(self.config.subject_claim)
        if not isinstance(subject, str) or not subject:
            raise UpstreamError(f"the upstream ID token has no {self.config.subject_claim} claim")
        return subject

    async def _id_token_validator(self) -> TokenValidator:
        if self._validator is None:
            endpoints = await self.endpoints()
            assert self.config.issuer_url is not None and endpoints.jwks is not None
            jwks = await self._checked(endpoints.jwks, "upstream jwks_uri")
            oidc = OIDCConfig(
                issuer=self.config.issuer_url,
                audience=self.config.client_id,
                jwks_url=jwks,
                insecure_allow_http=self.config.insecure_allow_http,
            )
            self._validator = TokenValidator(oidc, http=self._http)
        return self._validator
