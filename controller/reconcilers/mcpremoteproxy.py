"""The MCPRemoteProxy kind for :func:`~controller.reconcilers.workload.reconcile_workload`.

A change of the referenced MCPToolConfig, MCPExternalAuthConfig or of a Secret either of them names
re-enqueues the proxy; the re-rendered configuration has a new hash, which rolls the Deployment.
"""

from __future__ import annotations

from api.mcpremoteproxy import MCPRemoteProxy
from controller.core import CONFIGMAP, DEPLOYMENT, SECRET, SERVICE, SERVICEACCOUNT, Cache, Resource, Watch
from controller.reconcilers import mcpremoteproxy_build as build
from controller.reconcilers.children import JSON
from controller.reconcilers.kinds import MCPEXTERNALAUTHCONFIG, MCPREMOTEPROXY
from controller.reconcilers.proxy_workload import (
    ProxyRefs,
    ProxyState,
    proxy_status,
    render_unless_blocked,
    resolve_proxy_refs,
)
from controller.reconcilers.refs import (
    SECRET_INDEX,
    index_auth_config_secrets,
    referrer_watches,
    register_workload_indexes,
    secret_to_auth_referrers,
    strip_secret_values,
)
from controller.reconcilers.settings import ReconcilerSettings
from controller.reconcilers.status import PENDING, workload_state
from controller.reconcilers.workload import Outcome, WorkloadKind
from controller.reconcilers.writes import Events

OWNED: tuple[Resource, ...] = (DEPLOYMENT, SERVICE, CONFIGMAP, SERVICEACCOUNT)
READY_PHASE = "Ready"  # MCPRemoteProxy's phase vocabulary: Pending, Ready, Failed, Terminating


def setup(cache: Cache) -> list[Watch]:
    register_workload_indexes(cache, MCPREMOTEPROXY)
    cache.add_index(MCPEXTERNALAUTHCONFIG, SECRET_INDEX, index_auth_config_secrets)
    cache.set_transform(SECRET, strip_secret_values)
    return [*referrer_watches(cache, MCPREMOTEPROXY), secret_to_auth_referrers(cache, MCPREMOTEPROXY)]


def kind(settings: ReconcilerSettings) -> WorkloadKind[MCPRemoteProxy, ProxyRefs]:
    """The MCPRemoteProxy kind with ``settings`` (images, cluster domain)."""

    def render(proxy: MCPRemoteProxy, owner_ref: JSON, refs: ProxyRefs) -> list[JSON] | None:
        def children() -> list[JSON]:
            rendered = build.render_config(proxy, settings, refs.tool_config, refs.external_auth)
            return build.build_children(proxy, owner_ref, settings, rendered)

        return render_unless_blocked(refs, children)

    def status(proxy: MCPRemoteProxy, refs: ProxyRefs, outcome: Outcome) -> tuple[JSON, Events]:
        name = build.Names(proxy.metadata.name or "").proxy
        pods = workload_state(outcome.newest(DEPLOYMENT, proxy.metadata.namespace, name), "Deployment")
        url = build.service_url(proxy, settings)
        state = ProxyState(url, pods, READY_PHASE, f"serving {proxy.spec.remote_url} at {url}", PENDING)
        return proxy_status(proxy, refs, outcome, state)

    return WorkloadKind(MCPREMOTEPROXY, MCPRemoteProxy, OWNED, setup, resolve_proxy_refs, render, status)
