"""The MCPServer kind for :func:`~controller.reconcilers.workload.reconcile_workload`: its indexes and
watches, its children (``mcpserver_build``) and its status (proxy and server pods both count)."""

from __future__ import annotations

from api.mcpserver import MCPServer
from controller.core import (
    CONFIGMAP,
    DEPLOYMENT,
    ROLE,
    ROLEBINDING,
    SECRET,
    SERVICE,
    SERVICEACCOUNT,
    STATEFULSET,
    Cache,
    Resource,
    Watch,
    strip_pod_spec,
)
from controller.reconcilers import mcpserver_build as build
from controller.reconcilers.children import JSON
from controller.reconcilers.kinds import MCPEXTERNALAUTHCONFIG, MCPSERVER
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
from controller.reconcilers.status import RUNNING, STOPPED, StatusBuilder, WorkloadState, workload_state
from controller.reconcilers.workload import Outcome, WorkloadKind
from controller.reconcilers.writes import Events

OWNED: tuple[Resource, ...] = (DEPLOYMENT, STATEFULSET, SERVICE, CONFIGMAP, SERVICEACCOUNT, ROLE, ROLEBINDING)
STDIO_CAPPED = "StdioReplicaCapped"


def setup(cache: Cache) -> list[Watch]:
    register_workload_indexes(cache, MCPSERVER)
    cache.set_transform(SECRET, strip_secret_values)
    cache.set_transform(DEPLOYMENT, strip_pod_spec)  # the reconcilers read no workload's pod spec
    cache.set_transform(STATEFULSET, strip_pod_spec)
    cache.add_index(MCPEXTERNALAUTHCONFIG, SECRET_INDEX, index_auth_config_secrets)
    return [*referrer_watches(cache, MCPSERVER), secret_to_auth_referrers(cache, MCPSERVER)]


def kind(settings: ReconcilerSettings) -> WorkloadKind[MCPServer, ProxyRefs]:
    """The MCPServer kind with ``settings`` (images, cluster domain)."""

    def render(server: MCPServer, owner_ref: JSON, refs: ProxyRefs) -> list[JSON] | None:
        return render_unless_blocked(
            refs,
            lambda: build.build_children(server, owner_ref, settings, refs.tool_config, refs.external_auth),
        )

    def status(server: MCPServer, refs: ProxyRefs, outcome: Outcome) -> tuple[JSON, Events]:
        names = build.Names(server.metadata.name or "")
        namespace = server.metadata.namespace
        proxy = workload_state(outcome.newest(DEPLOYMENT, namespace, names.proxy), "Deployment")
        backend = workload_state(outcome.newest(STATEFULSET, namespace, names.server), "StatefulSet")
        url = build.service_url(server, settings)
        pods = WorkloadState(
            proxy.exists and backend.exists,
            proxy.ready and backend.ready,
            proxy.ready_replicas,
            proxy.detail if not proxy.ready else backend.detail,
        )
        state = ProxyState(url, pods, RUNNING, f"serving at {url}", STOPPED)
        return proxy_status(server, refs, outcome, state, lambda builder: _stdio_cap(server, builder))

    return WorkloadKind(MCPSERVER, MCPServer, OWNED, setup, resolve_proxy_refs, render, status)


def _stdio_cap(server: MCPServer, builder: StatusBuilder) -> None:
    requested = server.spec.replicas
    if build.is_stdio(server) and requested is not None and requested > 1:
        builder.set(
            STDIO_CAPPED,
            True,
            "StdioTransportCapAt1",
            f"spec.replicas is {requested} but a stdio server runs one process: 1 proxy replica runs",
        )
    else:
        builder.remove(STDIO_CAPPED)
