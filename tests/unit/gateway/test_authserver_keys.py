"""Signing keys and HMAC secrets of the embedded authorization server: rotation, and what is refused."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from api.auth_config import SecretValueSource
from gateway.authserver.keys import HmacKeys, KeyConfigError, SigningKeys

CLAIMS = {"iss": "https://i", "aud": "https://i/mcp", "sub": "u", "iat": 1, "exp": 2**40}


def pem(path: Path, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> SecretValueSource:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return SecretValueSource(file=str(path))


def verify(keys: SigningKeys, token: str) -> dict[str, object]:
    return keys.verify(token, issuer="https://i", audience="https://i/mcp", leeway=0)


def test_the_first_key_signs_and_every_key_verifies(tmp_path: Path) -> None:
    old = pem(tmp_path / "old.pem", rsa.generate_private_key(65537, 2048))
    new = pem(tmp_path / "new.pem", ec.generate_private_key(ec.SECP256R1()))
    before = SigningKeys.load((old,))
    issued_before = before.sign(CLAIMS)
    rotated = SigningKeys.load((new, old))
    assert jwt.get_unverified_header(rotated.sign(CLAIMS))["alg"] == "ES256"
    assert verify(rotated, issued_before)["sub"] == "u"  # tokens of the old key keep working
    assert [k["kid"] for k in rotated.jwks()["keys"]] == [rotated.keys[0].kid, before.keys[0].kid]
    assert SigningKeys.load((old,)).keys[0].kid == before.keys[0].kid  # the kid is the key's thumbprint
    with pytest.raises(jwt.InvalidSignatureError):
        verify(SigningKeys.load((new,)), issued_before)  # retired: the old key's tokens stop verifying


def test_without_keys_an_ephemeral_key_signs() -> None:
    keys = SigningKeys.load(())
    assert verify(keys, keys.sign(CLAIMS))["sub"] == "u"
    assert SigningKeys.load(()).keys[0].kid != keys.keys[0].kid


def test_unusable_keys_are_refused_naming_the_field(tmp_path: Path) -> None:
    (tmp_path / "bad.pem").write_text("not a key")
    with pytest.raises(KeyConfigError, match=r"authServer.signingKeys\[0\]: not an unencrypted PEM"):
        SigningKeys.load((SecretValueSource(file=str(tmp_path / "bad.pem")),))
    small = pem(tmp_path / "small.pem", rsa.generate_private_key(65537, 1024))
    with pytest.raises(KeyConfigError, match="at least 2048 bits"):
        SigningKeys.load((small,))


def test_hmac_secrets_rotate_and_the_current_one_must_be_long(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLD", "o" * 32)
    monkeypatch.setenv("NEW", "n" * 40)
    monkeypatch.setenv("SHORT", "s" * 16)
    old, new = SecretValueSource(env="OLD"), SecretValueSource(env="NEW")
    stored = HmacKeys.load((old,)).current("refresh-token")
    assert stored in HmacKeys.load((new, old)).digests("refresh-token")
    assert HmacKeys.load((new, old)).current("refresh-token") != stored
    with pytest.raises(KeyConfigError, match=r"hmacSecrets\[0\]: the current secret needs at least 32"):
        HmacKeys.load((SecretValueSource(env="SHORT"), old))
