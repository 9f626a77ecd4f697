"""Reading kubeconfig files and the in-cluster service account without kubernetes-asyncio."""

from __future__ import annotations

import datetime
import json
import ssl
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from controller.core import kubeconfig
from controller.core.kubeconfig import UnsupportedConfigError, from_kubeconfig_file, in_cluster


def self_signed() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-ca")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def write_config(tmp_path: Path, cluster: dict[str, Any], user: dict[str, Any]) -> str:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "main",
        "contexts": [
            {"name": "main", "context": {"cluster": "c", "user": "u"}},
            {"name": "other", "context": {"cluster": "c", "user": "nobody"}},
        ],
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443/", **cluster}}],
        "users": [{"name": "u", "user": user}],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(config))
    return str(path)


async def test_a_bearer_token_and_a_ca_file_relative_to_the_kubeconfig(tmp_path: Path) -> None:
    cert, _ = self_signed()
    (tmp_path / "ca.crt").write_bytes(cert)
    path = write_config(tmp_path, {"certificate-authority": "ca.crt"}, {"token": "abc"})
    connection = from_kubeconfig_file(path)
    assert connection.server == "https://127.0.0.1:6443"
    assert await connection.authorization() == "Bearer abc"
    assert connection.ssl_context.verify_mode == ssl.CERT_REQUIRED
    assert connection.ssl_context.cert_store_stats()["x509_ca"] == 1


async def test_inline_ca_and_client_certificate_data(tmp_path: Path) -> None:
    import base64  # noqa: PLC0415

    cert, key = self_signed()
    path = write_config(
        tmp_path,
        {"certificate-authority-data": base64.b64encode(cert).decode()},
        {
            "client-certificate-data": base64.b64encode(cert).decode(),
            "client-key-data": base64.b64encode(key).decode(),
        },
    )
    connection = from_kubeconfig_file(path)
    assert await connection.authorization() is None
    assert connection.ssl_context.cert_store_stats()["x509_ca"] == 1


async def test_a_token_file_is_read_again_after_a_while(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "token").write_text("first\n")
    path = write_config(tmp_path, {"insecure-skip-tls-verify": True}, {"tokenFile": "token"})
    connection = from_kubeconfig_file(path)
    assert connection.ssl_context.verify_mode == ssl.CERT_NONE
    assert await connection.authorization() == "Bearer first"
    (tmp_path / "token").write_text("rotated\n")
    assert await connection.authorization() == "Bearer first"  # cached within the re-read interval
    monkeypatch.setattr(kubeconfig, "TOKEN_FILE_REREAD", -1.0)
    assert await connection.authorization() == "Bearer rotated"


def test_exec_plugins_are_left_to_kubernetes_asyncio(tmp_path: Path) -> None:
    path = write_config(tmp_path, {}, {"exec": {"command": "get-token", "apiVersion": "v1"}})
    with pytest.raises(UnsupportedConfigError):
        from_kubeconfig_file(path)


def test_a_context_naming_a_missing_user_says_which(tmp_path: Path) -> None:
    path = write_config(tmp_path, {}, {"token": "abc"})
    with pytest.raises(ValueError, match="no user named 'nobody'"):
        from_kubeconfig_file(path, context="other")


async def test_in_cluster_uses_the_service_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, _ = self_signed()
    (tmp_path / "ca.crt").write_bytes(cert)
    (tmp_path / "token").write_text("sa-token")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    connection = in_cluster(tmp_path)
    assert connection.server == "https://10.96.0.1:443"
    assert await connection.authorization() == "Bearer sa-token"
