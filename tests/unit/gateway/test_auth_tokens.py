"""JWT validation against an issuer whose discovery and JWKS are served through a mock transport."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from api.auth_config import OIDCConfig, SecretValueSource
from gateway.auth.jwks import JWKSCache
from gateway.auth.tokens import (
    AuthUnavailableError,
    InsufficientScopeError,
    InvalidTokenError,
    TokenValidator,
    issuer_client,
)
from tests.support.clock import FakeClock

ISSUER = "https://issuer.example.com"
AUDIENCE = "https://mcp.example.com/mcp"


@functools.cache
def rsa_key(name: str) -> rsa.RSAPrivateKey:
    """One 2048-bit key per name for the whole module (generating them is the slow part)."""
    return rsa.generate_private_key(65537, 2048)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwk(public_key: Any, kid: str) -> dict[str, Any]:
    algorithm = RSAAlgorithm if isinstance(public_key, rsa.RSAPublicKey) else ECAlgorithm
    jwk: dict[str, Any] = algorithm.to_jwk(public_key, as_dict=True)
    jwk.update(kid=kid, use="sig")
    return jwk


@dataclass
class FakeIssuer:
    """Keys, a JWKS and a request log behind an httpx2 mock transport."""

    rsa_key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa_key("issuer"))
    ec_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    published: list[dict[str, Any]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    jwks_status: int = 200
    discovered_issuer: str = ISSUER

    def __post_init__(self) -> None:
        self.published = [_jwk(self.rsa_key.public_key(), "rsa-1"), _jwk(self.ec_key.public_key(), "ec-1")]

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request.url.path)
        if request.url.path == "/.well-known/openid-configuration":
            return httpx2.Response(200, json={"issuer": self.discovered_issuer, "jwks_uri": f"{ISSUER}/jwks"})
        if request.url.path == "/jwks":
            if self.jwks_status != 200:
                return httpx2.Response(self.jwks_status)
            return httpx2.Response(200, json={"keys": self.published})
        return httpx2.Response(404)

    def jwks_fetches(self) -> int:
        return self.requests.count("/jwks")

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "alice",
            "iat": now,
            "exp": now + 300,
            "scope": "mcp:tools openid",
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def rs256(self, kid: str = "rsa-1", key: rsa.RSAPrivateKey | None = None, **claims: Any) -> str:
        return jwt.encode(self.claims(**claims), key or self.rsa_key, algorithm="RS256", headers={"kid": kid})

    def es256(self, kid: str = "ec-1", **claims: Any) -> str:
        return jwt.encode(self.claims(**claims), self.ec_key, algorithm="ES256", headers={"kid": kid})


@pytest.fixture
def issuer() -> FakeIssuer:
    return FakeIssuer()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_validator(
    issuer: FakeIssuer, clock: FakeClock, environ: dict[str, str] | None = None, **config: Any
) -> TokenValidator:
    oidc = OIDCConfig.model_validate({"issuer": ISSUER, "audience": AUDIENCE, **config})
    http = httpx2.AsyncClient(transport=httpx2.MockTransport(issuer.handler))
    return TokenValidator(oidc, jwks=JWKSCache(oidc, http=http, clock=clock), http=http, environ=environ)


async def test_valid_rs256_token_found_through_discovery(issuer: FakeIssuer, clock: FakeClock) -> None:
    validator = make_validator(issuer, clock)
    result = await validator.validate(issuer.rs256())
    assert result.claims["sub"] == "alice"
    assert result.identity == "alice"
    assert result.scopes == {"mcp:tools", "openid"}
    assert issuer.requests == ["/.well-known/openid-configuration", "/jwks"]


async def test_valid_es256_token_with_explicit_jwks_url(issuer: FakeIssuer, clock: FakeClock) -> None:
    validator = make_validator(issuer, clock, jwksUrl=f"{ISSUER}/jwks")
    result = await validator.validate(issuer.es256(sub=None, client_id="robot"))
    assert result.identity == "robot"
    assert issuer.requests == ["/jwks"]


# Times are offsets from the moment the test runs (not from collection: the suite may run for minutes).
@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"exp": -120}, "expired"),
        ({"nbf": 120}, "not valid yet"),
        ({"iat": 120}, "not valid yet"),
        ({"aud": "https://other.example.com/mcp"}, "audience"),
        ({"iss": "https://evil.example.com"}, "issuer"),
        ({"exp": None}, "no exp claim"),
    ],
)
async def test_claim_checks_refuse(
    issuer: FakeIssuer, clock: FakeClock, claims: dict[str, Any], message: str
) -> None:
    now = int(time.time())
    timed = {k: now + v if k in ("exp", "nbf", "iat") and v is not None else v for k, v in claims.items()}
    validator = make_validator(issuer, clock)
    with pytest.raises(InvalidTokenError, match=message):
        await validator.validate(issuer.rs256(**timed))


async def test_clock_skew_is_tolerated(issuer: FakeIssuer, clock: FakeClock) -> None:
    validator = make_validator(issuer, clock, clockSkewSeconds=60)
    now = int(time.time())
    await validator.validate(issuer.rs256(exp=now - 20, nbf=now + 20, iat=now + 20))


async def test_bad_signature_is_refused(issuer: FakeIssuer, clock: FakeClock) -> None:
    forger = rsa_key("forger")
    with pytest.raises(InvalidTokenError, match="signature"):
        await make_validator(issuer, clock).validate(issuer.rs256(key=forger))


async def test_alg_none_is_refused(issuer: FakeIssuer, clock: FakeClock) -> None:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": "rsa-1"}).encode())
    token = f"{header}.{_b64(json.dumps(issuer.claims()).encode())}."
    with pytest.raises(InvalidTokenError, match="algorithm none is not allowed"):
        await make_validator(issuer, clock).validate(token)


def _hs256_with_rsa_public_key(issuer: FakeIssuer) -> str:
    """The classic confusion attack: HMAC-sign with the issuer's public key as the shared secret."""
    public_pem = issuer.rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
    payload = _b64(json.dumps(issuer.claims()).encode())
    signature = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


async def test_hs256_signed_with_rsa_public_key_is_refused(issuer: FakeIssuer, clock: FakeClock) -> None:
    with pytest.raises(InvalidTokenError, match="algorithm HS256 is not allowed"):
        await make_validator(issuer, clock).validate(_hs256_with_rsa_public_key(issuer))


async def test_hs256_confusion_refused_even_when_hs256_is_allowed(
    issuer: FakeIssuer, clock: FakeClock
) -> None:
    secret = "a-shared-secret-that-is-long-enough-for-hs256"
    validator = make_validator(
        issuer,
        clock,
        allowedAlgorithms=["RS256", "HS256"],
        sharedSecret={"env": "OIDC_SHARED"},
        environ={"OIDC_SHARED": secret},
    )
    with pytest.raises(InvalidTokenError, match="signature"):
        await validator.validate(_hs256_with_rsa_public_key(issuer))
    good = jwt.encode(issuer.claims(), secret, algorithm="HS256")
    assert (await validator.validate(good)).identity == "alice"
    assert issuer.jwks_fetches() == 0  # HMAC keys never come from the JWKS


async def test_rs256_token_naming_an_ec_key_is_refused(issuer: FakeIssuer, clock: FakeClock) -> None:
    with pytest.raises(InvalidTokenError, match="no signing key"):
        await make_validator(issuer, clock).validate(issuer.rs256(kid="ec-1"))


async def test_unknown_kid_refetches_once_and_rotation_works(issuer: FakeIssuer, clock: FakeClock) -> None:
    validator = make_validator(issuer, clock, jwksUrl=f"{ISSUER}/jwks")
    await validator.validate(issuer.rs256())
    rotated = rsa_key("rotated")
    issuer.published.append(_jwk(rotated.public_key(), "rsa-2"))
    clock.now += 11  # past jwksMinRefreshSeconds (10 s by default)
    result = await validator.validate(issuer.rs256(kid="rsa-2", key=rotated))
    assert result.identity == "alice"
    assert issuer.jwks_fetches() == 2


async def test_flood_of_unknown_kids_does_not_hammer_the_issuer(issuer: FakeIssuer, clock: FakeClock) -> None:
    validator = make_validator(issuer, clock, jwksUrl=f"{ISSUER}/jwks")
    await validator.validate(issuer.rs256())
    clock.now += 11
    for i in range(50):
        with pytest.raises(InvalidTokenError, match="no signing key"):
            await validator.validate(issuer.rs256(kid=f"made-up-{i}"))
    assert issuer.jwks_fetches() == 2  # the first unknown kid refetched; the other 49 did not
    clock.now += 11
    with pytest.raises(InvalidTokenError):
        await validator.validate(issuer.rs256(kid="made-up-again"))
    assert issuer.jwks_fetches() == 3
    assert (await validator.validate(issuer.rs256())).identity == "alice"


async def test_cached_keys_survive_an_issuer_outage(issuer: FakeIssuer, clock: FakeClock) -> None:
    validator = make_validator(issuer, clock, jwksUrl=f"{ISSUER}/jwks", jwksCacheSeconds=60)
    await validator.validate(issuer.rs256())
    issuer.jwks_status = 503
    clock.now += 120  # cache expired: a refetch is attempted and fails
    assert (await validator.validate(issuer.rs256())).identity == "alice"
    assert issuer.jwks_fetches() == 2


async def test_unreachable_issuer_without_keys_is_unavailable(issuer: FakeIssuer, clock: FakeClock) -> None:
    issuer.jwks_status = 500
    validator = make_validator(issuer, clock, jwksUrl=f"{ISSUER}/jwks")
    for _ in range(5):
        with pytest.raises(AuthUnavailableError):
            await validator.validate(issuer.rs256())
    assert issuer.jwks_fetches() == 1  # failures are rate limited too


async def test_discovery_with_mismatched_issuer_is_refused(issuer: FakeIssuer, clock: FakeClock) -> None:
    issuer.discovered_issuer = "https://evil.example.com"
    with pytest.raises(AuthUnavailableError):
        await make_validator(issuer, clock).validate(issuer.rs256())
    assert issuer.jwks_fetches() == 0


async def test_missing_required_scope_lists_it(issuer: FakeIssuer, clock: FakeClock) -> None:
    validator = make_validator(issuer, clock, requiredScopes=["mcp:tools", "mcp:admin"])
    with pytest.raises(InsufficientScopeError) as caught:
        await validator.validate(issuer.rs256())
    assert caught.value.missing == ("mcp:admin",)
    ok = await validator.validate(issuer.rs256(scope=None, scp=["mcp:tools", "mcp:admin"]))
    assert ok.scopes == {"mcp:tools", "mcp:admin"}


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c", "e30.e30.e30"])
async def test_garbage_is_refused(issuer: FakeIssuer, clock: FakeClock, token: str) -> None:
    with pytest.raises(InvalidTokenError):
        await make_validator(issuer, clock).validate(token)


async def test_shared_secret_from_file(issuer: FakeIssuer, clock: FakeClock, tmp_path: Any) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("file-based-shared-secret-long-enough-for-hs256\n")
    oidc = OIDCConfig(
        issuer=ISSUER,
        audience=AUDIENCE,
        allowed_algorithms=("HS256",),
        shared_secret=SecretValueSource(file=str(secret_file)),
    )
    validator = TokenValidator(oidc, http=httpx2.AsyncClient(transport=httpx2.MockTransport(issuer.handler)))
    token = jwt.encode(issuer.claims(), "file-based-shared-secret-long-enough-for-hs256", algorithm="HS256")
    assert (await validator.validate(token)).identity == "alice"
    with pytest.raises(InvalidTokenError, match="algorithm RS256 is not allowed"):
        await validator.validate(issuer.rs256())
    await validator.aclose()


@pytest.mark.parametrize(
    ("rule", "accepted", "refused"),
    [
        (
            "system:serviceaccount:team:client",
            "system:serviceaccount:team:client",
            "system:serviceaccount:team:other",
        ),
        ("system:serviceaccount:team:", "system:serviceaccount:team:any", "system:serviceaccount:teams:any"),
    ],
)
async def test_a_subject_rule_accepts_only_those_service_accounts(
    issuer: FakeIssuer, clock: FakeClock, rule: str, accepted: str, refused: str
) -> None:
    validator = make_validator(issuer, clock, subject=rule)
    assert (await validator.validate(issuer.rs256(sub=accepted))).claims["sub"] == accepted
    with pytest.raises(InvalidTokenError, match="subject is not allowed"):
        await validator.validate(issuer.rs256(sub=refused))
    with pytest.raises(InvalidTokenError, match="subject is not allowed"):
        await validator.validate(issuer.rs256(sub=None))


async def test_the_token_file_is_sent_to_the_issuer_only_and_read_at_each_fetch(
    clock: FakeClock, tmp_path: Any
) -> None:
    sent: list[tuple[str, str | None]] = []
    keys = FakeIssuer()

    def handler(request: httpx2.Request) -> httpx2.Response:
        sent.append((request.url.host, request.headers.get("Authorization")))
        if request.url.path == "/.well-known/openid-configuration":
            return httpx2.Response(
                200, json={"issuer": ISSUER, "jwks_uri": "https://keys.elsewhere.example/jwks"}
            )
        return httpx2.Response(200, json={"keys": keys.published})

    token = tmp_path / "token"
    token.write_text("first\n")
    oidc = OIDCConfig.model_validate(
        {"issuer": ISSUER, "audience": AUDIENCE, "jwksAuthTokenPath": str(token), "jwksMinRefreshSeconds": 0}
    )
    http = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    validator = TokenValidator(oidc, jwks=JWKSCache(oidc, http=http, clock=clock), http=http)
    await validator.validate(keys.rs256())
    # the discovered jwks_uri is on another host: it never receives the token
    assert sent == [("issuer.example.com", "Bearer first"), ("keys.elsewhere.example", None)]

    pinned = OIDCConfig.model_validate(
        {"issuer": ISSUER, "audience": AUDIENCE, "jwksUrl": f"{ISSUER}/jwks", "jwksAuthTokenPath": str(token)}
    )
    sent.clear()
    cache = JWKSCache(pinned, http=http, clock=clock)
    token.write_text("rotated")
    await TokenValidator(pinned, jwks=cache, http=http).validate(keys.rs256())
    assert sent == [("issuer.example.com", "Bearer rotated")]
    token.unlink()
    with pytest.raises(AuthUnavailableError):  # no token to send and none cached yet for a new cache
        await TokenValidator(pinned, jwks=JWKSCache(pinned, http=http, clock=clock), http=http).validate(
            keys.rs256()
        )


def test_a_ca_bundle_that_cannot_be_read_is_a_configuration_error(tmp_path: Any) -> None:
    oidc = OIDCConfig.model_validate(
        {"issuer": ISSUER, "audience": AUDIENCE, "caBundlePath": str(tmp_path / "absent.crt")}
    )
    with pytest.raises(ValueError, match=r"caBundlePath .*absent\.crt: cannot be read"):
        issuer_client(oidc)
