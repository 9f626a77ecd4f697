"""Rendering CRD pieces into the data plane's configuration models (pure).

The proxy and the gateway load ``api.proxy_config`` / ``api.auth_config`` models; these functions turn
the user-facing CRD fields (ToolHive-compatible names) into them. Nothing here reads secret values:
secrets become environment variables filled by the kubelet from ``secretKeyRef``.
"""

from __future__ import annotations

from api.auth_config import OIDCConfig as RuntimeOIDCConfig
from api.common import OIDCConfig
from api.mcptoolconfig import MCPToolConfig
from api.proxy_config import ToolFilterConfig, ToolOverrideConfig


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


def inbound_oidc(
    oidc: OIDCConfig | None, default_audience: str, default_resource_url: str
) -> RuntimeOIDCConfig | None:
    """The inline OIDC block of a workload as the proxy's inbound JWT validation settings."""
    if oidc is None or oidc.inline is None:
        return None
    inline = oidc.inline
    return RuntimeOIDCConfig(
        issuer=inline.issuer,
        audience=inline.audience or default_audience,
        jwks_url=inline.jwks_url,
        resource_url=oidc.resource_url or default_resource_url,
        insecure_allow_http=inline.insecure_allow_http,
    )
