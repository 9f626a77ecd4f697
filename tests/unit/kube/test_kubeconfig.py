"""Reading kubeconfig files and the in-cluster service account without kubernetes-asyncio, and the
clear error when there is neither."""

from __future__ import annotations

import datetime
import json
import os
import ssl
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kube.credentials import (
    TOKEN_FILE_REREAD,
    ConfigError,
    UnsupportedConfigError,
    token_file_authorization,
)
from kube.kubeconfig import from_kubeconfig_file, load_connection
from kube.service_account import in_cluster_server, service_account


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


async def test_a_token_file_is_read_again_after_a_while(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("first\n")
    path = write_config(tmp_path, {"insecure-skip-tls-verify": True}, {"tokenFile": "token"})
    connection = from_kubeconfig_file(path)
    assert connection.ssl_context.verify_mode == ssl.CERT_NONE
    assert await connection.authorization() == "Bearer first"
    (tmp_path / "token").write_text("rotated\n")
    assert await connection.authorization() == "Bearer first"  # cached within the re-read interval
    now = [0.0]
    rotating = token_file_authorization(tmp_path / "token", clock=lambda: now[0])
    assert await rotating() == "Bearer rotated"
    (tmp_path / "token").write_text("rotated again\n")
    now[0] = TOKEN_FILE_REREAD - 1
    assert await rotating() == "Bearer rotated"
    now[0] = TOKEN_FILE_REREAD
    assert await rotating() == "Bearer rotated again"


def test_exec_plugins_are_left_to_kubernetes_asyncio(tmp_path: Path) -> None:
    path = write_config(tmp_path, {}, {"exec": {"command": "get-token", "apiVersion": "v1"}})
    with pytest.raises(UnsupportedConfigError):
        from_kubeconfig_file(path)


def test_a_context_naming_a_missing_user_says_which(tmp_path: Path) -> None:
    path = write_config(tmp_path, {}, {"token": "abc"})
    with pytest.raises(ConfigError, match="no user named 'nobody'"):
        from_kubeconfig_file(path, context="other")


async def test_in_cluster_uses_the_service_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, _ = self_signed()
    (tmp_path / "ca.crt").write_bytes(cert)
    (tmp_path / "token").write_text("sa-token")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    connection = service_account(token_file=tmp_path / "token", ca_file=tmp_path / "ca.crt")
    assert connection.server == "https://10.96.0.1:443"
    assert await connection.authorization() == "Bearer sa-token"
    assert connection.ssl_context.cert_store_stats()["x509_ca"] == 1  # the cluster CA is the only anchor


async def test_a_service_account_token_rotated_by_the_kubelet_is_read_on_the_next_connect(
    tmp_path: Path,
) -> None:
    (tmp_path / "token").write_text("token-1\n")
    connection = service_account("https://10.0.0.1:6443/", token_file=tmp_path / "token", token_reread=0)
    assert connection.server == "https://10.0.0.1:6443"
    assert await connection.authorization() == "Bearer token-1"
    (tmp_path / "token").write_text("token-2\n")
    assert await connection.authorization() == "Bearer token-2"


async def test_a_missing_service_account_token_names_the_file_and_the_fix(tmp_path: Path) -> None:
    connection = service_account("https://10.0.0.1:6443", token_file=tmp_path / "token")
    with pytest.raises(ConfigError, match=r"token file .*token does not exist: mount") as caught:
        await connection.authorization()
    assert "\n" not in str(caught.value)


def test_the_in_cluster_address_of_an_ipv6_service_is_bracketed() -> None:
    env = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443"}
    assert in_cluster_server(env) == "https://[fd00::1]:6443"
    assert in_cluster_server({"KUBERNETES_SERVICE_HOST": "10.96.0.1"}) == "https://10.96.0.1:443"


def test_outside_a_pod_the_in_cluster_address_names_the_fix() -> None:
    with pytest.raises(ConfigError, match=r"KUBERNETES_SERVICE_HOST is not set.*or set backend\.apiServer"):
        in_cluster_server({}, otherwise="set backend.apiServer")


async def test_no_kubeconfig_and_no_service_account_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        await load_connection(environ={}, home=tmp_path)
    message = str(caught.value)
    assert "\n" not in message
    assert "KUBECONFIG is not set" in message and str(tmp_path / ".kube" / "config") in message
    assert "set KUBECONFIG (or pass --kubeconfig)" in message


async def test_a_pod_without_its_service_account_token_is_told_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="KUBERNETES_SERVICE_HOST is set but the service-account token"):
        await load_connection(environ={"KUBERNETES_SERVICE_HOST": "10.96.0.1"}, home=tmp_path)


async def test_a_kubeconfig_that_does_not_exist_is_named(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope")
    with pytest.raises(ConfigError, match=f"kubeconfig {missing} does not exist"):
        await load_connection(environ={"KUBECONFIG": missing}, home=tmp_path)


async def test_kubeconfig_is_found_from_the_environment_then_home(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"insecure-skip-tls-verify": True}, {"token": "abc"})
    connection = await load_connection(environ={"KUBECONFIG": path}, home=tmp_path / "elsewhere")
    assert await connection.authorization() == "Bearer abc"
    (tmp_path / ".kube").mkdir()
    os.replace(path, tmp_path / ".kube" / "config")
    connection = await load_connection(environ={}, home=tmp_path)
    assert connection.server == "https://127.0.0.1:6443"


def test_a_certificate_authority_path_that_does_not_exist_is_named(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"certificate-authority": "missing.crt"}, {"token": "abc"})
    with pytest.raises(ConfigError, match=r"certificate-authority .*missing.crt does not exist"):
        from_kubeconfig_file(path)
