"""Rendering CRD pieces into the data plane's configuration models (pure).

The proxy and the gateway load ``api.proxy_config`` / ``api.auth_config`` models; these functions turn
the user-facing CRD fields (ToolHive-compatible names) into them. Nothing here reads secret values:
secrets become environment variables filled by the kubelet from ``secretKeyRef``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from api.auth_config import (
    BearerTokenAuth,
    HeaderForwardConfig,
    HeaderFromSecret,
    HeaderInjectionAuth,
    OAuth2ClientCredentialsAuth,
    OutboundAuthConfig,
    SecretValueSource,
    TokenExchangeAuth,
)
from api.auth_config import OIDCConfig as RuntimeOIDCConfig
from api.common import CABundleSource, HeaderForward, KubernetesOIDCConfig, OIDCConfig, SecretKeyRef
from api.mcpexternalauthconfig import MCPExternalAuthConfigSpec
from api.mcptoolconfig import MCPToolConfig
from api.proxy_config import ToolFilterConfig, ToolOverrideConfig

_NOT_ENV_CHARS = re.compile(r"[^A-Z0-9]+")


def tool_filter(tool_config: MCPToolConfig | None) -> ToolFilterConfig:
    """MCPToolConfig ``toolsFilter`` / ``toolsOverride`` as the proxy's tool filter."""
    if tool_config is None:
        return ToolFilterConfig()
    spec = tool_config.spec
    overrides = {
        original: ToolOverrideConfig(name=o.name, description=o.description)
        for original, o in sorted((spec.tools_override or {}).items())
    }
    allow = tuple(spec.tools_filter) if spec.tools_filter else None
    return ToolFilterConfig(allow=allow, overrides=overrides)


SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
"""Where the kubelet mounts a pod's service account token and the cluster's CA."""
OIDC_CA_BUNDLE_DIR = "/etc/mcp-operator-oidc-ca"
"""Where the proxy (gateway) pod mounts the ConfigMap key of its OIDC provider's ``caBundleRef``."""
OIDC_CA_BUNDLE_FILE = "ca.crt"


def inbound_oidc(
    oidc: OIDCConfig | None, default_audience: str, default_resource_url: str, namespace: str
) -> RuntimeOIDCConfig | None:
    """The OIDC block of a workload (in ``namespace``) as the proxy's inbound JWT validation settings."""
    if oidc is None:
        return None
    if oidc.type == "kubernetesServiceAccount" and oidc.kubernetes_service_account is not None:
        return _service_account_oidc(
            oidc.kubernetes_service_account, oidc.resource_url or default_resource_url, namespace
        )
    if oidc.inline is None:
        return None
    inline = oidc.inline
    return RuntimeOIDCConfig(
        issuer=inline.issuer,
        audience=inline.audience or default_audience,
        jwks_url=inline.jwks_url,
        resource_url=oidc.resource_url or default_resource_url,
        insecure_allow_http=inline.insecure_allow_http,
        jwks_auth_token_path=inline.jwks_auth_token_path,
        ca_bundle_path=f"{OIDC_CA_BUNDLE_DIR}/{OIDC_CA_BUNDLE_FILE}" if inline.ca_bundle_ref else None,
    )


def oidc_ca_bundle_ref(oidc: OIDCConfig | None) -> CABundleSource | None:
    """The ``caBundleRef`` of an inline OIDC provider (None without one)."""
    if oidc is None or oidc.type != "inline" or oidc.inline is None:
        return None
    return oidc.inline.ca_bundle_ref


def uses_cluster_auth(oidc: OIDCConfig | None) -> bool:
    """The workload's pod mounts its service account token: it validates service account tokens with its
    own token and the cluster's CA, or its ``inline.jwksAuthTokenPath`` is that token."""
    if oidc is not None and oidc.type == "inline" and oidc.inline is not None:
        path = oidc.inline.jwks_auth_token_path
        return path is not None and path.startswith(f"{SERVICE_ACCOUNT_DIR}/")
    block = oidc.kubernetes_service_account if oidc is not None else None
    return (
        oidc is not None
        and oidc.type == "kubernetesServiceAccount"
        and block is not None
        and (block.use_cluster_auth is not False)
    )


def _service_account_oidc(
    block: KubernetesOIDCConfig, resource_url: str, namespace: str
) -> RuntimeOIDCConfig:
    subject = None
    if block.service_account is not None:
        subject = f"system:serviceaccount:{block.namespace or namespace}:{block.service_account}"
    elif block.namespace is not None:
        subject = f"system:serviceaccount:{block.namespace}:"
    cluster_auth = block.use_cluster_auth is not False
    return RuntimeOIDCConfig(
        issuer=block.issuer,
        audience=block.audience,
        jwks_url=block.jwks_url,
        resource_url=resource_url,
        ca_bundle_path=f"{SERVICE_ACCOUNT_DIR}/ca.crt" if cluster_auth else None,
        jwks_auth_token_path=f"{SERVICE_ACCOUNT_DIR}/token" if cluster_auth else None,
        subject=subject,
    )


def secret_env_name(ref: SecretKeyRef) -> str:
    """The environment variable a Secret key is exposed as: readable, and unique per (secret, key)."""
    readable = _NOT_ENV_CHARS.sub("_", f"{ref.name}_{ref.key}".upper()).strip("_")
    digest = hashlib.sha256(f"{ref.name}/{ref.key}".encode()).hexdigest()[:6].upper()
    return f"SECRET_{readable}_{digest}"


@dataclass
class SecretEnv:
    """Secret keys a rendered configuration refers to, as container ``env`` entries (sorted, unique)."""

    entries: dict[str, dict[str, Any]] = field(default_factory=dict)

    def source(self, ref: SecretKeyRef) -> SecretValueSource:
        """Register ``ref`` and return the config's reference to it (the variable, never the value)."""
        name = secret_env_name(ref)
        self.entries[name] = {
            "name": name,
            "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}},
        }
        return SecretValueSource(env=name)

    def env(self) -> list[dict[str, Any]]:
        return [self.entries[name] for name in sorted(self.entries)]


def outbound_auth(spec: MCPExternalAuthConfigSpec, secrets: SecretEnv) -> OutboundAuthConfig | None:
    """An MCPExternalAuthConfig spec as the data plane's outbound auth (None for ``unauthenticated``).

    Raises ValueError (naming the field) when the runtime model refuses the settings, e.g. a plain-http
    token URL that is not loopback, and for a type without its block or not supported: such a config is
    never rendered as "send no credential".
    """
    if spec.type == "headerInjection" and spec.header_injection is not None:
        injection = spec.header_injection
        return HeaderInjectionAuth(
            header_name=injection.header_name, value_secret_ref=secrets.source(injection.value_secret_ref)
        )
    if spec.type == "bearerToken" and spec.bearer_token is not None:
        return BearerTokenAuth(token_secret_ref=secrets.source(spec.bearer_token.token_secret_ref))
    if spec.type == "oauth2ClientCredentials" and spec.oauth2_client_credentials is not None:
        grant = spec.oauth2_client_credentials
        return OAuth2ClientCredentialsAuth(
            token_url=grant.token_url,
            client_id=grant.client_id,
            client_secret_ref=secrets.source(grant.client_secret_ref),
            scopes=tuple(grant.scopes or ()),
            audience=grant.audience,
        )
    if spec.type == "tokenExchange" and spec.token_exchange is not None:
        exchange = spec.token_exchange
        optional: dict[str, Any] = {}
        if exchange.subject_token_type:
            optional["subject_token_type"] = exchange.subject_token_type
        return TokenExchangeAuth(
            token_url=exchange.token_url,
            client_id=exchange.client_id,
            client_secret_ref=(
                secrets.source(exchange.client_secret_ref) if exchange.client_secret_ref else None
            ),
            audience=exchange.audience,
            scopes=tuple(exchange.scopes or ()),
            external_token_header_name=exchange.external_token_header_name,
            **optional,
        )
    if spec.type == "unauthenticated":
        return None
    if spec.type == "embeddedAuthServer":
        raise ValueError(
            "type embeddedAuthServer is the proxy's own authorization server: refer to it with "
            "spec.authServerRef, not spec.externalAuthConfigRef"
        )
    raise ValueError(f"type {spec.type} cannot be rendered: it is not supported or its block is missing")


def header_forward(forward: HeaderForward | None, secrets: SecretEnv) -> HeaderForwardConfig | None:
    """``spec.headerForward`` as the extra upstream headers of a proxy or gateway (secret values as env
    references)."""
    if forward is None:
        return None
    plain = dict(sorted((forward.add_plaintext_headers or {}).items()))
    from_secret = tuple(
        HeaderFromSecret(header_name=h.header_name, value_secret_ref=secrets.source(h.value_secret_ref))
        for h in forward.add_headers_from_secret or []
    )
    if not plain and not from_secret:
        return None
    return HeaderForwardConfig(add_plaintext_headers=plain, add_headers_from_secret=from_secret)
