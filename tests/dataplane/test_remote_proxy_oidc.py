"""The remote proxy behind an independent OIDC provider (PyPI ``oidc-provider-mock``) with an API key out.

A user signs in at the provider (authorization-code flow); the proxy validates the ID token through the
provider's discovery document and JWKS, and calls the remote with ``headerInjection`` (an API key read
from an environment variable, as the operator renders a Secret). The remote never sees the user's token.
"""

from __future__ import annotations

import os

import httpx2
import pytest

from tests.dataplane.proxyutil import serve_asgi
from tests.support.auth import bind
from tests.support.oidc_provider import CLIENT_ID, sign_in
from tests.support.remote_proxy import Spy, client_for, in_process, remote_server

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning:authlib.*")]


async def test_provider_tokens_in_api_key_out_and_the_user_token_stays_home(provider: str) -> None:
    id_token = sign_in(provider, "alice@example.com")["id_token"]
    spy_sock, spy_url = bind()
    with remote_server("fixture") as (upstream, _):
        spy = Spy(upstream)
        config = {
            "name": "remote",
            "backend": {
                "type": "http",
                "url": f"{spy_url}/v2/mcp",
                "allowPrivateEndpoint": True,
                "auth": {
                    "type": "headerInjection",
                    "headerName": "X-API-Key",
                    "valueSecretRef": {"env": "API_KEY"},
                },
            },
            "oidc": {"issuer": provider, "audience": CLIENT_ID},
        }
        os.environ["API_KEY"] = "remote-api-key"
        try:
            async with serve_asgi((spy_sock, spy.app())), in_process(config) as (base, _):
                async with client_for(base, id_token) as client:
                    result = await client.call_tool("add", {"a": 2, "b": 3})
                    assert result.structured_content == {"result": 5}
                async with httpx2.AsyncClient(timeout=10) as http:
                    forged = await http.post(
                        f"{base}/mcp",
                        json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                        headers={"authorization": f"Bearer {id_token[:-4]}AAAA"},
                    )
                assert (
                    forged.status_code == 401
                    and 'error="invalid_token"' in forged.headers["www-authenticate"]
                )
        finally:
            os.environ.pop("API_KEY", None)
    assert spy.seen and {r["path"] for r in spy.seen} == {"/v2/mcp"}
    assert all(r["headers"]["x-api-key"] == "remote-api-key" for r in spy.seen)
    assert all("authorization" not in r["headers"] for r in spy.seen)
    assert id_token not in spy.header_values()
