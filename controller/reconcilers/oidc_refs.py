"""``oidcConfigRef``: a shared MCPOIDCConfig plus the workload's own audience, scopes and resource URL.

A resolved reference becomes exactly the inline ``oidcConfig`` a user could have written, so the proxy
and the gateway are rendered by the one code path of the inline form (the same configuration, the same
checks). An unresolved or invalid reference is a :class:`~controller.reconcilers.refs.Missing` entry,
which blocks the children: a workload that asks for authentication is never deployed without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from api.common import InlineOIDCConfig, KubernetesOIDCConfig, MCPOIDCConfigReference, OIDCConfig
from api.mcpoidcconfig import MCPOIDCConfig
from api.mcpremoteproxy import MCPRemoteProxy
from api.mcpserver import MCPServer
from api.virtualmcpserver import VirtualMCPServer
from controller.core import SECRET, Cache, Resource, Watch
from controller.reconcilers.children import JSON, spec_hash
from controller.reconcilers.kinds import MCPOIDCCONFIG
from controller.reconcilers.refs import (
    OIDC_CONFIG_INDEX,
    SECRET_INDEX,
    Missing,
    index_oidc_config_secrets,
    missing_config_secrets,
    oidc_config_secret_refs,
    parse_ref,
    secret_to_config_referrers,
    strip_secret_values,
)

P = TypeVar("P", MCPServer, MCPRemoteProxy)


@dataclass(frozen=True)
class ResolvedOIDC:
    """A usable MCPOIDCConfig and the inline OIDC settings it amounts to for one workload."""

    config: MCPOIDCConfig
    oidc: OIDCConfig

    @property
    def hash(self) -> str:
        """The MCPOIDCConfig's ``configHash``, copied into the workload's ``status.oidcConfigHash``."""
        return spec_hash(self.config.spec)


def as_inline(ref: MCPOIDCConfigReference, config: MCPOIDCConfig) -> OIDCConfig:
    """The inline ``oidcConfig`` equivalent to ``ref`` on ``config`` (whose rules passed: the block of
    its type is set)."""
    cluster = config.spec.kubernetes_service_account
    if config.spec.type == "kubernetesServiceAccount" and cluster is not None:
        accepted = KubernetesOIDCConfig(**cluster.model_dump(), audience=ref.audience, scopes=ref.scopes)
        return OIDCConfig(
            type="kubernetesServiceAccount",
            kubernetes_service_account=accepted,
            resource_url=ref.resource_url,
        )
    shared = config.spec.inline
    if shared is None:  # refused by the kind's rules; never rendered as "no authentication"
        raise ValueError(f"MCPOIDCConfig '{config.metadata.name}' has no {config.spec.type} block")
    inline = InlineOIDCConfig(**shared.model_dump(), audience=ref.audience, scopes=ref.scopes)
    return OIDCConfig(type="inline", inline=inline, resource_url=ref.resource_url)


def resolve_oidc_ref(
    ref: MCPOIDCConfigReference | None, raw: JSON | None, ref_field: str, missing: list[Missing]
) -> ResolvedOIDC | None:
    """``ref`` resolved against ``raw`` (the cached MCPOIDCConfig; the caller reports it not found).
    An invalid config is reported in ``missing`` (reason ``OIDCConfigInvalid``)."""
    if ref is None:
        return None
    config = parse_ref(MCPOIDCConfig, raw, f"{ref_field}.name", missing)
    return None if config is None else ResolvedOIDC(config, as_inline(ref, config))


def resolve_oidc(
    cache: Cache,
    namespace: str,
    ref: MCPOIDCConfigReference | None,
    raw: JSON | None,
    *,
    ref_field: str,
    missing: list[Missing],
) -> ResolvedOIDC | None:
    """:func:`resolve_oidc_ref`, and the client secret the MCPOIDCConfig names exists (as for the inline
    form, a missing Secret blocks the workload)."""
    resolved = resolve_oidc_ref(ref, raw, ref_field, missing)
    if resolved is None:
        return None
    refs = oidc_config_secret_refs(resolved.config.spec.to_json())
    absent = missing_config_secrets(
        cache, namespace, f"MCPOIDCConfig '{resolved.config.metadata.name}'", refs
    )
    missing += absent
    return None if absent else resolved


def oidc_secret_watch(cache: Cache, resource: Resource) -> Watch:
    """Secret events enqueue the ``resource`` workloads whose MCPOIDCConfig names that Secret."""
    cache.add_index(MCPOIDCCONFIG, SECRET_INDEX, index_oidc_config_secrets)
    cache.set_transform(SECRET, strip_secret_values)
    return secret_to_config_referrers(cache, resource, MCPOIDCCONFIG, OIDC_CONFIG_INDEX)


def proxy_with_oidc(workload: P, resolved: ResolvedOIDC | None) -> P:
    """The proxy workload as if its ``oidcConfigRef`` had been written inline."""
    if resolved is None:
        return workload
    spec = workload.spec.model_copy(update={"oidc_config": resolved.oidc, "oidc_config_ref": None})
    return workload.model_copy(update={"spec": spec})


def gateway_with_oidc(vmcp: VirtualMCPServer, resolved: ResolvedOIDC | None) -> VirtualMCPServer:
    """The VirtualMCPServer as if its ``incomingAuth.oidcConfigRef`` had been written inline."""
    if resolved is None:
        return vmcp
    incoming = vmcp.spec.incoming_auth.model_copy(
        update={"oidc_config": resolved.oidc, "oidc_config_ref": None}
    )
    return vmcp.model_copy(update={"spec": vmcp.spec.model_copy(update={"incoming_auth": incoming})})
