"""Interop: tokens of an independent OIDC provider (PyPI ``oidc-provider-mock``, authlib based).

The provider runs on 127.0.0.1 in a thread. A user signs in with the authorization-code flow; the ID token
it issues (RS256, ``aud`` = the client id) is validated by our validator through OIDC discovery, and by the
middleware in front of an app.
"""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from api.auth_config import OIDCConfig
from api.common import OIDCConfig as CRDOIDCConfig
from controller.reconcilers.render import inbound_oidc
from gateway.auth.inbound import OIDCMiddleware
from gateway.auth.tokens import AuthUnavailableError, InvalidTokenError, TokenValidator
from tests.dataplane.conftest import PrivateIssuer
from tests.support.oidc_provider import CLIENT_ID, sign_in

# The provider's own dependency (authlib) warns about its internal API use; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:authlib.*")


async def test_validator_accepts_the_providers_id_token_through_discovery(provider: str) -> None:
    id_token = sign_in(provider, "alice@example.com")["id_token"]
    validator = TokenValidator(OIDCConfig(issuer=provider, audience=CLIENT_ID))
    try:
        validated = await validator.validate(id_token)
        assert validated.identity == "alice@example.com"
        assert validated.claims["iss"] == provider
        assert validator.jwks.fetch_count == 1
    finally:
        await validator.aclose()
    other_audience = TokenValidator(OIDCConfig(issuer=provider, audience="another-server"))
    try:
        with pytest.raises(InvalidTokenError, match="audience"):
            await other_audience.validate(id_token)
    finally:
        await other_audience.aclose()


def test_middleware_in_front_of_an_app_with_the_providers_token(provider: str) -> None:
    async def whoami(request: Request) -> Response:
        return JSONResponse(
            {
                "identity": request.state.mcp_auth_identity,
                "authorization": request.headers.get("authorization"),
            }
        )

    app = OIDCMiddleware(
        Starlette(routes=[Route("/mcp", whoami)]),
        OIDCConfig(issuer=provider, audience=CLIENT_ID),
        "http://testserver/mcp",
    )
    id_token = sign_in(provider, "bob@example.com")["id_token"]
    with TestClient(app) as client:
        ok = client.get("/mcp", headers={"Authorization": f"Bearer {id_token}"})
        assert ok.json() == {"identity": "bob@example.com", "authorization": None}
        refused = client.get("/mcp", headers={"Authorization": f"Bearer {id_token}x"})
        assert refused.status_code == 401
        assert 'error="invalid_token"' in refused.headers["www-authenticate"]


async def test_a_ca_bundle_verifies_an_issuer_with_a_private_ca(private_ca_provider: PrivateIssuer) -> None:
    issuer = private_ca_provider.issuer
    id_token = sign_in(issuer, "carol@example.com", str(private_ca_provider.ca_file))["id_token"]
    inline = {"issuer": issuer, "audience": CLIENT_ID, "caBundleRef": {"configMapRef": {"name": "idp-ca"}}}
    rendered = inbound_oidc(
        CRDOIDCConfig.model_validate({"type": "inline", "inline": inline}), "unused", f"{issuer}/mcp", "ns"
    )
    assert rendered is not None and rendered.ca_bundle_path == "/etc/mcp-operator-oidc-ca/ca.crt"

    # The system CAs do not know the provider's CA: its keys cannot be fetched, the token is refused.
    system_cas = TokenValidator(rendered.model_copy(update={"ca_bundle_path": None}))
    try:
        with pytest.raises(AuthUnavailableError):
            await system_cas.validate(id_token)
    finally:
        await system_cas.aclose()
    # The bundle where the pod mounts it (here, where the test wrote it): accepted.
    mounted = TokenValidator(rendered.model_copy(update={"ca_bundle_path": str(private_ca_provider.ca_file)}))
    try:
        assert (await mounted.validate(id_token)).identity == "carol@example.com"
    finally:
        await mounted.aclose()
