"""Fixtures shared by the data-plane tests."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator

import pytest
import werkzeug.serving


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # plain http on loopback, for the test only
    with warnings.catch_warnings():  # authlib forces its deprecation warnings on at import; mute them
        import authlib.deprecate  # noqa: PLC0415

        warnings.simplefilter("ignore", authlib.deprecate.AuthlibDeprecationWarning)
        import oidc_provider_mock  # noqa: PLC0415

    server = werkzeug.serving.make_server("127.0.0.1", 0, oidc_provider_mock.app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
