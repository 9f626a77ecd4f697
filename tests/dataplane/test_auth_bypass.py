"""Attempts to get past the proxy's inbound OIDC, through the real proxy app on 127.0.0.1.

``test_proxy_auth`` covers the plain refusals (expired, nbf in the future, wrong audience or issuer, a
forged signature, ``alg: none``, HS256 keyed with the RSA public key's PEM). This file covers the
bypasses attackers actually try: ``kid`` confusion, keys carried in the token header (``jwk``, ``jku``,
``x5u``), HS/RS confusion with other encodings of the public key, ``alg`` spelling games, claims of the
wrong type, audience arrays, ``iat`` in the future, tokens outside the Authorization header, and random
garbage. Every refusal is a 401 ``invalid_token``; the backend never sees a request carrying a token, and
a valid token still works afterwards (the proxy did not wedge).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.auth import AUDIENCE, Issuer, bind, challenge, public_jwk, rsa_key, serve
from tests.support.proxy_auth import Stack, stack


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json_segment(value: Any) -> str:
    return _b64(json.dumps(value).encode())


def unsigned(header: dict[str, Any], body: dict[str, Any]) -> str:
    return f"{_json_segment(header)}.{_json_segment(body)}."


def issuer_signed(body: dict[str, Any]) -> str:
    """Signed by the issuer's real key, whatever the claims hold (PyJWT's encoder refuses odd types)."""
    return jwt.PyJWS().encode(json.dumps(body).encode(), rsa_key("issuer"), "RS256", headers={"kid": "rsa-1"})


def claims(issuer: Issuer, **overrides: Any) -> dict[str, Any]:
    """Mallory's claims, with no scope unless an override gives one."""
    return issuer.claims(**{"sub": "mallory", "scope": None, **overrides})


def hmac_token(header: dict[str, Any], body: dict[str, Any], secret: bytes) -> str:
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[header["alg"]]
    signing_input = f"{_json_segment(header)}.{_json_segment(body)}"
    return f"{signing_input}.{_b64(hmac.new(secret, signing_input.encode(), digest).digest())}"


def issuer_rsa_public_encodings() -> dict[str, bytes]:
    """The issuer's RSA public key in every form an HS/RS confusion attack uses as the HMAC secret."""
    public = rsa_key("issuer").public_key()
    jwk = public_jwk(rsa_key("issuer"), "rsa-1")
    return {
        "pem-spki": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "pem-pkcs1": public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1),
        "der": public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "jwk-json": json.dumps(jwk).encode(),
        "jwk-n": jwk["n"].encode(),
        "openssh": public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH),
    }


async def assert_refused(s: Stack, case: str, token: str) -> None:
    response = await s.post_ping(token)
    assert response.status_code == 401, f"{case}: {response.status_code} {response.text[:200]}"
    assert challenge(response)["error"] == "invalid_token", case


async def assert_still_serving(s: Stack) -> None:
    async with s.client(s.issuer.mint()) as client:
        assert (await client.call_tool("echo", {"text": "ok"})).structured_content == {"result": "ok"}
    assert [h for h in s.backend_seen if "authorization" in h] == []


async def test_kid_confusion_and_keys_carried_in_the_header_are_refused() -> None:
    attacker = rsa_key("attacker")
    attacker_jwk = public_jwk(attacker, "rsa-1")
    (attacker_sock, attacker_url) = bind()
    attacker_issuer = Issuer(url=attacker_url, keys=[attacker_jwk])
    async with serve((attacker_sock, attacker_issuer.app())), stack() as s:
        body = claims(s.issuer)
        cases = {
            # A genuine issuer signature, but the kid names the issuer's EC key: kid and alg must agree.
            "kid of the EC key on an RS256 token": jwt.encode(
                body, rsa_key("issuer"), algorithm="RS256", headers={"kid": "ec-1"}
            ),
            # The attacker's key under the issuer's kid.
            "attacker key with the issuer kid": jwt.encode(
                body, attacker, algorithm="RS256", headers={"kid": "rsa-1"}
            ),
            "attacker key without kid": jwt.encode(body, attacker, algorithm="RS256"),
            "kid path traversal": jwt.encode(
                body, attacker, algorithm="RS256", headers={"kid": "../../jwks"}
            ),
            "empty kid": jwt.encode(body, attacker, algorithm="RS256", headers={"kid": ""}),
            "10 KB kid": jwt.encode(body, attacker, algorithm="RS256", headers={"kid": "k" * 10_000}),
            "kid as a list": unsigned({"alg": "RS256", "kid": ["rsa-1"]}, body) + "AAAA",
            "kid as an object": unsigned({"alg": "RS256", "kid": {"$ne": ""}}, body) + "AAAA",
            "embedded jwk": jwt.encode(
                body, attacker, algorithm="RS256", headers={"kid": "rsa-1", "jwk": attacker_jwk}
            ),
            "jku to the attacker's JWKS": jwt.encode(
                body, attacker, algorithm="RS256", headers={"kid": "rsa-1", "jku": f"{attacker_url}/jwks"}
            ),
            "x5u to the attacker": jwt.encode(
                body, attacker, algorithm="RS256", headers={"kid": "rsa-1", "x5u": f"{attacker_url}/cert.pem"}
            ),
        }
        for case, token in cases.items():
            await assert_refused(s, case, token)
        assert attacker_issuer.jwks_requests == 0, "the proxy fetched keys from a URL in the token"
        await assert_still_serving(s)


async def test_hs_rs_confusion_with_every_encoding_of_the_public_key_is_refused() -> None:
    async with stack() as s:
        body = claims(s.issuer)
        for encoding, secret in issuer_rsa_public_encodings().items():
            for alg in ("HS256", "HS384", "HS512"):
                for header in ({"alg": alg, "kid": "rsa-1"}, {"alg": alg}):
                    await assert_refused(s, f"{alg} keyed with {encoding}", hmac_token(header, body, secret))
        for alg in ("none", "None", "NONE", "nOnE", "", "RS256 ", "rs256", "ES256K", "PS256x"):
            bare = unsigned({"alg": alg, "kid": "rsa-1"}, body)
            await assert_refused(s, f"alg {alg!r} unsigned", bare)
            await assert_refused(s, f"alg {alg!r} with a signature", bare + "c2lnbmF0dXJl")
        header_only = jwt.encode(body, rsa_key("issuer"), algorithm="RS256", headers={"kid": "rsa-1"})
        await assert_refused(s, "signature stripped", header_only.rsplit(".", 1)[0] + ".")
        await assert_still_serving(s)


async def test_audience_arrays_and_claim_types() -> None:
    async with stack() as s:
        sign = s.issuer.mint
        now = int(time.time())
        accepted = {
            "aud list with only us": sign(aud=[AUDIENCE]),
            "aud list with us among others": sign(aud=["billing", AUDIENCE, "search"]),
        }
        for case, token in accepted.items():
            async with s.client(token) as client:
                result = await client.call_tool("echo", {"text": case})
                assert result.structured_content == {"result": case}

        def signed(**overrides: Any) -> str:
            return issuer_signed(claims(s.issuer, **overrides))

        refused = {
            "aud list without us": signed(aud=["billing", "search"]),
            "empty aud list": signed(aud=[]),
            "aud missing": signed(aud=None),
            "aud a prefix of ours": signed(aud=AUDIENCE[:-1]),
            "aud with ours as a prefix": signed(aud=AUDIENCE + "-admin"),
            "aud nested list": signed(aud=[[AUDIENCE]]),
            "aud as a number": signed(aud=1),
            "aud as an object": signed(aud={"aud": AUDIENCE}),
            "iss as a list": signed(iss=[s.issuer.url]),
            "iss with a trailing slash": signed(iss=s.issuer.url + "/"),
            "exp missing": signed(exp=None),
            "exp as a string": signed(exp=str(now + 300)),
            "exp just past the skew": signed(exp=now - 120, iat=now - 600),
            "iat in the future": signed(iat=now + 3600),
            "nbf in the future as a float": signed(nbf=now + 3600.5),
            "exp not a number": signed(exp="tomorrow"),
        }
        for case, token in refused.items():
            await assert_refused(s, case, token)
        await assert_still_serving(s)


async def test_tokens_outside_the_authorization_header_or_with_another_scheme_are_not_accepted() -> None:
    async with stack() as s:
        token = s.issuer.mint()
        ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        accept = {"accept": "application/json, text/event-stream"}
        attempts = {
            "query parameter": ({**accept}, f"{s.proxy_url}/mcp?access_token={token}"),
            "basic scheme": ({**accept, "authorization": f"Basic {token}"}, f"{s.proxy_url}/mcp"),
            "cookie": ({**accept, "cookie": f"access_token={token}"}, f"{s.proxy_url}/mcp"),
            "two tokens": ({**accept, "authorization": f"Bearer {token} {token}"}, f"{s.proxy_url}/mcp"),
            "x-forwarded header": ({**accept, "x-forwarded-access-token": token}, f"{s.proxy_url}/mcp"),
        }
        for case, (headers, url) in attempts.items():
            response = await s.http.post(url, json=ping, headers=headers)
            assert response.status_code == 401, case
        huge = await s.post_ping("a" * 60_000)
        assert huge.status_code in (400, 401, 431), huge.status_code
        await assert_still_serving(s)


# Random garbage in place of a token: hypothesis drives the same live proxy (one stack for all examples).
_garbage = st.one_of(
    st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=300),
    st.lists(st.binary(max_size=200).map(_b64), min_size=2, max_size=4).map(".".join),
    st.dictionaries(st.text(max_size=10), st.none() | st.integers() | st.text(max_size=20), max_size=5).map(
        lambda header: f"{_json_segment(header)}.{_json_segment({'sub': 'x'})}.AAAA"
    ),
)


async def test_random_garbage_tokens_are_refused_and_the_proxy_keeps_serving() -> None:
    async with stack() as s:
        tokens: list[str] = []

        @settings(max_examples=100, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
        @given(_garbage)
        def collect(token: str) -> None:
            tokens.append(token)

        collect()
        for token in tokens:
            response = await s.post_ping(token)
            assert response.status_code in (400, 401), (token[:80], response.status_code)
        await assert_still_serving(s)


pytestmark = pytest.mark.slow
