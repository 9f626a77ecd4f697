"""Fixtures shared by the data-plane tests."""

from __future__ import annotations

import contextlib
import ssl
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import werkzeug.serving

from tests.support.tls import private_ca_server


@contextlib.contextmanager
def _oidc_provider(ssl_context: ssl.SSLContext | None = None) -> Iterator[str]:
    """``oidc-provider-mock`` on 127.0.0.1 in a thread (over TLS with ``ssl_context``); yields its issuer."""
    with warnings.catch_warnings():  # authlib forces its deprecation warnings on at import; mute them
        import authlib.deprecate  # noqa: PLC0415

        warnings.simplefilter("ignore", authlib.deprecate.AuthlibDeprecationWarning)
        import oidc_provider_mock  # noqa: PLC0415

    app = oidc_provider_mock.app()
    server = werkzeug.serving.make_server("127.0.0.1", 0, app, threaded=True, ssl_context=ssl_context)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"{'https' if ssl_context else 'http'}://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # plain http on loopback, for the test only
    with _oidc_provider() as issuer:
        yield issuer


@dataclass(frozen=True)
class PrivateIssuer:
    """An OIDC provider serving https with a certificate of a private CA."""

    issuer: str
    ca_file: Path
    """The CA certificate (PEM): what verifies the issuer; the system CAs do not."""


@pytest.fixture
def private_ca_provider(tmp_path: Path) -> Iterator[PrivateIssuer]:
    tls = private_ca_server("test identity provider CA")
    for name, pem in (("ca.crt", tls.ca_pem), ("server.crt", tls.cert_pem), ("server.key", tls.key_pem)):
        (tmp_path / name).write_text(pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server.crt", tmp_path / "server.key")
    with _oidc_provider(context) as issuer:
        yield PrivateIssuer(issuer, tmp_path / "ca.crt")
