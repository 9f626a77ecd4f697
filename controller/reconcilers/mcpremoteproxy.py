"""The MCPRemoteProxy kind for :func:`~controller.reconcilers.workload.reconcile_workload`.

A change of the referenced MCPToolConfig, MCPExternalAuthConfig, MCPOIDCConfig or of a Secret they name
re-enqueues the proxy; the re-rendered configuration has a new hash, which rolls the Deployment.
"""

from __future__ import annotations

from api.mcpremoteproxy import MCPRemoteProxy
from controller.core import DEPLOYMENT, Cache, Resource, Watch
from controller.reconcilers import mcpremoteproxy_build as build
from controller.reconcilers import proxy_workload as proxies
from controller.reconcilers.children import JSON
from controller.reconcilers.kinds import MCPREMOTEPROXY
from controller.reconcilers.oidc_refs import proxy_with_oidc
from controller.reconcilers.settings import ReconcilerSettings
from controller.reconcilers.status import PENDING, workload_state
from controller.reconcilers.workload import FRONT_CHILDREN, Outcome, WorkloadKind
from controller.reconcilers.writes import Events

OWNED: tuple[Resource, ...] = FRONT_CHILDREN
READY_PHASE = "Ready"  # MCPRemoteProxy's phase vocabulary: Pending, Ready, Failed, Terminating


def setup(cache: Cache) -> list[Watch]:
    return proxies.proxy_setup(MCPREMOTEPROXY, cache)


def kind(settings: ReconcilerSettings) -> WorkloadKind[MCPRemoteProxy, proxies.ProxyRefs]:
    """The MCPRemoteProxy kind with ``settings`` (images, cluster domain)."""

    def render(proxy: MCPRemoteProxy, owner_ref: JSON, refs: proxies.ProxyRefs) -> list[JSON] | None:
        def children() -> list[JSON]:
            inline = proxy_with_oidc(proxy, refs.oidc)
            rendered = build.render_config(
                inline,
                settings,
                refs.tool_config,
                refs.external_auth,
                authz=refs.authz,
                auth_server=refs.auth_server,
            )
            return build.build_children(inline, owner_ref, settings, rendered)

        return proxies.render_unless_blocked(refs, children)

    def status(proxy: MCPRemoteProxy, refs: proxies.ProxyRefs, outcome: Outcome) -> tuple[JSON, Events]:
        name = build.Names(proxy.metadata.name or "").proxy
        pods = workload_state(outcome.newest(DEPLOYMENT, proxy.metadata.namespace, name), "Deployment")
        url = outcome.url_once_served(proxy.metadata.namespace, name, build.service_url(proxy, settings))
        state = proxies.ProxyState(
            url, pods, READY_PHASE, f"serving {proxy.spec.remote_url} at {url}", PENDING
        )
        return proxies.proxy_status(proxy, refs, outcome, state)

    return WorkloadKind(
        MCPREMOTEPROXY, MCPRemoteProxy, OWNED, setup, proxies.resolve_proxy_refs, render, status
    )
