"""The MCPServer kind for :func:`~controller.reconcilers.workload.reconcile_workload`: its indexes and
watches, its children (``mcpserver_build``) and its status (proxy and server pods both count)."""

from __future__ import annotations

from api.conditions import READY, find_condition
from api.mcpserver import MCPServer
from controller.core import (
    DEPLOYMENT,
    NETWORKPOLICY,
    ROLE,
    ROLEBINDING,
    STATEFULSET,
    Cache,
    Resource,
    Watch,
    strip_pod_spec,
)
from controller.reconcilers import mcpserver_build as build
from controller.reconcilers import proxy_workload as proxies
from controller.reconcilers import server_pods
from controller.reconcilers.children import JSON
from controller.reconcilers.kinds import MCPSERVER
from controller.reconcilers.oidc_refs import proxy_with_oidc
from controller.reconcilers.settings import ReconcilerSettings
from controller.reconcilers.status import RUNNING, STOPPED, StatusBuilder, WorkloadState, workload_state
from controller.reconcilers.workload import FRONT_CHILDREN, Outcome, WorkloadKind
from controller.reconcilers.writes import Events

OWNED: tuple[Resource, ...] = (*FRONT_CHILDREN, STATEFULSET, ROLE, ROLEBINDING, NETWORKPOLICY)
STDIO_CAPPED = "StdioReplicaCapped"


def setup(cache: Cache) -> list[Watch]:
    cache.set_transform(DEPLOYMENT, strip_pod_spec)  # the reconcilers read no workload's pod spec
    cache.set_transform(STATEFULSET, strip_pod_spec)
    return [*proxies.proxy_setup(MCPSERVER, cache), server_pods.setup(cache, MCPSERVER.kind)]


def kind(settings: ReconcilerSettings) -> WorkloadKind[MCPServer, proxies.ProxyRefs]:
    """The MCPServer kind with ``settings`` (images, cluster domain)."""

    def render(server: MCPServer, owner_ref: JSON, refs: proxies.ProxyRefs) -> list[JSON] | None:
        return proxies.render_unless_blocked(
            refs,
            lambda: build.build_children(
                proxy_with_oidc(server, refs.oidc),
                owner_ref,
                settings,
                refs.tool_config,
                refs.external_auth,
                authz=refs.authz,
                auth_server=refs.auth_server,
            ),
        )

    def status(server: MCPServer, refs: proxies.ProxyRefs, outcome: Outcome) -> tuple[JSON, Events]:
        names = build.Names(server.metadata.name or "")
        namespace = server.metadata.namespace
        proxy = workload_state(outcome.newest(DEPLOYMENT, namespace, names.proxy), "Deployment")
        statefulset = outcome.newest(STATEFULSET, namespace, names.server)
        backend = workload_state(statefulset, "StatefulSet")
        url = outcome.url_once_served(namespace, names.proxy, build.service_url(server, settings))
        # The proxy waits for its server: when the server pod cannot run, that is the cause to report.
        reported = find_condition(server.status.conditions, READY)
        failing = (
            None
            if backend.ready and proxy.ready
            else server_pods.problem(outcome.cache, statefulset, reported.reason if reported else None)
        )
        pods = WorkloadState(
            proxy.exists and backend.exists,
            proxy.ready and backend.ready,
            proxy.ready_replicas,
            failing.message if failing else proxy.detail if not proxy.ready else backend.detail,
            failing.reason if failing else None,
        )
        state = proxies.ProxyState(url, pods, RUNNING, f"serving at {url}", STOPPED)
        return proxies.proxy_status(server, refs, outcome, state, lambda builder: _stdio_cap(server, builder))

    return WorkloadKind(MCPSERVER, MCPServer, OWNED, setup, proxies.resolve_proxy_refs, render, status)


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
