"""Calls to an OAuth 2.0 token endpoint, with retries and a failure cool-down.

:class:`TokenEndpoint` posts one form (client credentials grant or RFC 8693 exchange), authenticates
the client (``client_secret_basic`` or ``client_secret_post``) and returns a :class:`IssuedToken`.
Transient failures (network errors, HTTP 429 and 5xx) are retried a few times with exponential backoff
and full jitter. After a failed call the endpoint enters a cool-down (also exponential with jitter,
capped) during which callers get the last error at once instead of a new request: an endpoint that is
down sees a trickle of requests, never a storm. (An ``invalid_grant`` answer concerns one subject token
only and starts no cool-down.) Errors are :class:`TokenEndpointError` with a message
that names the config fields to check.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import httpx2

from .metrics import OUTBOUND_TOKEN_REQUESTS

__all__ = ["Backoff", "IssuedToken", "OutboundAuthError", "TokenEndpoint", "TokenEndpointError"]

DEFAULT_EXPIRES_IN = 300.0
"""Lifetime assumed when a token response has no ``expires_in``."""


class OutboundAuthError(RuntimeError):
    """The credential for the backend cannot be produced; the message says which field to fix."""


class TokenEndpointError(OutboundAuthError):
    """The token endpoint refused or failed the request."""

    def __init__(self, message: str, *, transient: bool, code: str = "") -> None:
        super().__init__(message)
        self.transient = transient
        self.code = code
        """The OAuth error code (``invalid_client``, ...) when the endpoint sent one."""


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    token_type: str
    expires_at: float
    """Monotonic deadline (``clock()`` + ``expires_in``)."""


@dataclass
class Backoff:
    """Exponential backoff with full jitter: attempt n waits ``uniform(0, min(cap, base * 2**n))``."""

    base: float = 0.25
    cap: float = 60.0
    rand: Callable[[], float] = random.random

    def delay(self, attempt: int) -> float:
        return self.rand() * min(self.cap, self.base * (2.0**attempt))


@dataclass(kw_only=True, eq=False)
class TokenEndpoint:
    """One token endpoint with one client identity. ``sleep`` and ``clock`` are seams for tests."""

    token_url: str
    kind: str
    client_id: str | None
    client_secret: Callable[[], str] | None
    client_auth_method: str
    http: httpx2.AsyncClient
    attempts: int = 3
    retry_backoff: Backoff | None = None
    """Between attempts of one request; None = 0.25 s doubling up to 2 s."""
    cooldown_backoff: Backoff | None = None
    """After a failed request; None = 1 s doubling up to 60 s."""
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    _failures: int = field(default=0, init=False)
    _blocked_until: float = field(default=0.0, init=False)
    _last_error: TokenEndpointError | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._retry_backoff = self.retry_backoff or Backoff(base=0.25, cap=2.0)
        self._cooldown_backoff = self.cooldown_backoff or Backoff(base=1.0, cap=60.0)

    async def request(self, form: Mapping[str, str]) -> IssuedToken:
        """POST ``form``; retry transient failures; fail fast while cooling down after a failure."""
        if self._last_error is not None and self.clock() < self._blocked_until:
            raise self._last_error
        try:
            token = await self._with_retries(form)
        except TokenEndpointError as err:
            if err.code == "invalid_grant":
                raise  # about this subject token only: other callers are not held back
            self._failures += 1
            self._blocked_until = self.clock() + max(
                self._cooldown_backoff.delay(self._failures - 1), self._cooldown_backoff.base / 2
            )
            self._last_error = err
            raise
        self._failures = 0
        self._last_error = None
        return token

    async def _with_retries(self, form: Mapping[str, str]) -> IssuedToken:
        attempt = 0
        while True:
            try:
                return await self._once(form)
            except TokenEndpointError as err:
                attempt += 1
                if not err.transient or attempt >= self.attempts:
                    raise
                await self.sleep(self._retry_backoff.delay(attempt - 1))

    async def _once(self, form: Mapping[str, str]) -> IssuedToken:
        data = dict(form)
        auth: httpx2.Auth = httpx2.Auth()  # the base class sends no credentials
        if self.client_id is not None:
            secret = self.client_secret() if self.client_secret is not None else ""
            if self.client_auth_method == "client_secret_basic" and self.client_secret is not None:
                auth = httpx2.BasicAuth(self.client_id, secret)
            else:
                data["client_id"] = self.client_id
                if self.client_secret is not None:
                    data["client_secret"] = secret
        try:
            response = await self.http.post(
                self.token_url, data=data, auth=auth, headers={"Accept": "application/json"}
            )
        except httpx2.HTTPError as err:
            unreachable = f"cannot reach tokenUrl {self.token_url} ({type(err).__name__}); check the URL "
            raise self._failed(unreachable + "and that the token endpoint is reachable", True) from None
        if response.status_code != 200:
            raise self._failed(response)
        try:
            body = response.json()
            access_token = body["access_token"]
            if not isinstance(access_token, str) or not access_token:
                raise TypeError
        except (ValueError, KeyError, TypeError):
            no_token = f"tokenUrl {self.token_url} answered 200 without an access_token; is tokenUrl "
            raise self._failed(no_token + "the token endpoint?", False) from None
        OUTBOUND_TOKEN_REQUESTS.labels(type=self.kind, result="ok").inc()
        expires_in = body.get("expires_in")
        lifetime = (
            float(expires_in)
            if isinstance(expires_in, int | float) and expires_in > 0
            else DEFAULT_EXPIRES_IN
        )
        return IssuedToken(
            access_token=access_token,
            token_type=str(body.get("token_type") or "Bearer"),
            expires_at=self.clock() + lifetime,
        )

    def _failed(self, why: str | httpx2.Response, transient: bool = False) -> TokenEndpointError:
        """Counts a failed token request; the error to raise (``why``: a message or the HTTP answer)."""
        OUTBOUND_TOKEN_REQUESTS.labels(type=self.kind, result="error").inc()
        if isinstance(why, str):
            return TokenEndpointError(f"{self.kind}: {why}", transient=transient)
        return self._http_error(why)

    def _http_error(self, response: httpx2.Response) -> TokenEndpointError:
        status = response.status_code
        code = description = ""
        try:
            body = response.json()
            if isinstance(body, dict):
                code = str(body.get("error") or "")
                description = str(body.get("error_description") or "")
        except ValueError:
            pass
        detail = (
            f"HTTP {status}"
            + (f" {code}" if code else "")
            + (f": {description[:200]}" if description else "")
        )
        transient = status == 429 or status >= 500
        if code == "invalid_client" or status == 401:
            hint = "check clientId and the secret behind clientSecretRef"
        elif code in ("invalid_scope", "invalid_target"):
            hint = "check scopes and audience"
        elif code == "invalid_grant":
            hint = "the subject token was refused; check subjectTokenType and the trust between the issuers"
        elif code == "unsupported_grant_type":
            hint = f"the authorization server does not support the {self.kind} grant at tokenUrl"
        elif transient:
            hint = "the token endpoint is failing; retrying with backoff"
        else:
            hint = "check tokenUrl and the client settings"
        return TokenEndpointError(
            f"{self.kind}: tokenUrl {self.token_url} answered {detail}; {hint}",
            transient=transient,
            code=code,
        )
