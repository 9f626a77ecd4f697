"""The auth modules' public names are what the proxy, the gateway and the reconcilers import."""

from __future__ import annotations

import api.auth_config
import gateway.auth.inbound
import gateway.auth.outbound


def test_config_exports() -> None:
    assert set(api.auth_config.__all__) >= {
        "OIDCConfig",
        "OutboundAuthConfig",
        "HeaderInjectionAuth",
        "BearerTokenAuth",
        "OAuth2ClientCredentialsAuth",
        "TokenExchangeAuth",
        "HeaderForwardConfig",
        "SecretValueSource",
        "parse_outbound_auth",
    }


def test_inbound_exports() -> None:
    assert set(gateway.auth.inbound.__all__) == {
        "CLAIMS_STATE_KEY",
        "IDENTITY_STATE_KEY",
        "METADATA_PATH",
        "PUBLIC_PATHS",
        "TOKEN_STATE_KEY",
        "OIDCMiddleware",
        "TokenValidator",
        "ValidatedToken",
        "protected_resource_metadata",
    }
    assert gateway.auth.inbound.CLAIMS_STATE_KEY == "mcp_auth_claims"
    assert gateway.auth.inbound.IDENTITY_STATE_KEY == "mcp_auth_identity"
    assert gateway.auth.inbound.TOKEN_STATE_KEY == "mcp_auth_token"


def test_outbound_exports() -> None:
    assert set(gateway.auth.outbound.__all__) == {
        "Backoff",
        "ClientCredentialsProvider",
        "CompositeProvider",
        "CredentialProvider",
        "OutboundAuthError",
        "StaticHeaderProvider",
        "TokenEndpointError",
        "TokenExchangeProvider",
        "build_outbound_provider",
    }
    for name in gateway.auth.outbound.__all__:
        assert hasattr(gateway.auth.outbound, name)
