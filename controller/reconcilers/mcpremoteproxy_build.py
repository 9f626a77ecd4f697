"""Desired state of an MCPRemoteProxy: pure functions from the typed spec to the child manifests.

Children (``../shared`` design, section 4), all owned by the MCPRemoteProxy:

- ConfigMap ``<name>-proxy``: the proxy configuration (``proxy.json``) with an HTTP backend to
  ``spec.remoteUrl`` (its path and query kept as they are), the outbound credential rendered from the
  referenced MCPExternalAuthConfig, ``headerForward``, the tool filter, inbound OIDC and audit. Secret
  values never appear in it: each Secret key becomes an environment variable (``secretKeyRef``) that the
  config names;
- ServiceAccount ``<name>-proxy`` (no token: the remote proxy never talks to the Kubernetes API), unless
  ``spec.serviceAccount`` names an existing one;
- Deployment ``<name>``: ``mcp-operator proxy --config ...`` with the config's hash in a pod-template
  annotation, so a changed configuration (including a changed MCPExternalAuthConfig) rolls the pods;
- Service ``<name>``: the endpoint clients use.

``spec.replicas`` unset leaves the Deployment's replica count to whoever scales it (an HPA).
"""

from __future__ import annotations

from dataclasses import dataclass

from api.authz import cedar_config
from api.authz_config import CedarConfig
from api.common import ResourceOverrides
from api.mcpexternalauthconfig import MCPExternalAuthConfig
from api.mcpremoteproxy import MCPRemoteProxy
from api.mcptoolconfig import MCPToolConfig
from api.proxy_config import AuditConfig, HttpBackend, ProxyConfig, dump_proxy_config
from controller.reconcilers import children
from controller.reconcilers import workload_build as common
from controller.reconcilers.auth_server_render import embedded_auth_server
from controller.reconcilers.children import JSON
from controller.reconcilers.render import (
    SecretEnv,
    header_forward,
    inbound_oidc,
    oidc_ca_bundle_ref,
    outbound_auth,
    tool_filter,
    uses_cluster_auth,
)
from controller.reconcilers.scaling_render import session_storage_config
from controller.reconcilers.settings import ReconcilerSettings
from controller.reconcilers.workload_build import CONFIG_DIR, FrontPod, Owner, WorkloadNames

CONFIG_KEY = "proxy.json"
CONTAINER = "proxy"


Names = WorkloadNames
"""Names of an MCPRemoteProxy's children: Deployment and Service ``<name>``, ConfigMap and account
``<name>-proxy``."""


@dataclass(frozen=True)
class Rendered:
    """The proxy configuration as text, its hash, and the Secret-backed env vars it names."""

    config: ProxyConfig
    text: str
    digest: str
    env: list[JSON]


def endpoint_path(proxy: MCPRemoteProxy) -> str:
    """``/sse`` in front of an SSE remote, else ``/mcp`` (the proxy serves both; this one is advertised)."""
    return "/sse" if proxy.spec.transport == "sse" else "/mcp"


def service_url(proxy: MCPRemoteProxy, settings: ReconcilerSettings) -> str:
    """``status.url``: the proxy Service's in-cluster URL."""
    name, namespace = proxy.metadata.name or "", proxy.metadata.namespace
    return common.status_url(name, namespace, settings, proxy.spec.proxy_port, endpoint_path(proxy))


def render_config(
    proxy: MCPRemoteProxy,
    settings: ReconcilerSettings,
    tool_config: MCPToolConfig | None,
    external_auth: MCPExternalAuthConfig | None,
    *,
    authz: CedarConfig | None = None,
    auth_server: MCPExternalAuthConfig | None = None,
) -> Rendered:
    """The proxy's configuration (``authz``: the policies of its MCPAuthzConfig, when it refers to one).
    Raises ValueError when the referenced auth config cannot be rendered."""
    spec = proxy.spec
    secrets = SecretEnv()
    backend = HttpBackend(
        url=spec.remote_url,
        transport=spec.transport,
        auth=outbound_auth(external_auth.spec, secrets) if external_auth is not None else None,
        header_forward=header_forward(spec.header_forward, secrets),
        allow_private_endpoint=spec.allow_private_endpoint,
    )
    url = service_url(proxy, settings)
    config = ProxyConfig(
        name=proxy.metadata.name or "",
        host="0.0.0.0",
        port=spec.proxy_port,
        backend=backend,
        tool_filter=tool_filter(tool_config),
        oidc=inbound_oidc(
            spec.oidc_config,
            default_audience=url,
            default_resource_url=url,
            namespace=proxy.metadata.namespace or "",
        ),
        authz=authz or (cedar_config(spec.authz_config) if spec.authz_config else None),
        audit=AuditConfig(enabled=bool(spec.audit and spec.audit.enabled)),
        session_storage=session_storage_config(spec.session_storage, secrets),
        auth_server=embedded_auth_server(
            auth_server, proxy.metadata.namespace or "", endpoint_path(proxy), settings, secrets
        ),
        endpoint_prefix=spec.endpoint_prefix or "",
        trust_proxy_headers=bool(spec.trust_proxy_headers),
    )
    text = dump_proxy_config(config)
    return Rendered(config, text, children.config_hash(text), secrets.env())


def build_children(
    proxy: MCPRemoteProxy, owner_ref: JSON, settings: ReconcilerSettings, rendered: Rendered
) -> list[JSON]:
    """Every child manifest of ``proxy`` (apply bodies: only the fields we own)."""
    owner = Owner.of(proxy, owner_ref)
    names = Names(owner.name)
    objects = [common.config_map(owner, names.config, {CONFIG_KEY: rendered.text})]
    overrides = proxy.spec.resource_overrides or ResourceOverrides()
    if proxy.spec.service_account is None:
        objects.append(
            common.service_account(
                owner,
                names.account,
                automount=uses_cluster_auth(proxy.spec.oidc_config),
                overrides=overrides.proxy_deployment,
            )
        )
    objects += [
        build_deployment(proxy, owner_ref, settings, rendered),
        common.proxy_service(owner, proxy.spec, proxy.spec.proxy_port, overrides),
        *common.disruption_budget(owner, names.proxy, proxy.spec.pod_disruption_budget, settings),
    ]
    return objects


def build_deployment(
    proxy: MCPRemoteProxy, owner_ref: JSON, settings: ReconcilerSettings, rendered: Rendered
) -> JSON:
    names = Names(proxy.metadata.name or "")
    spec = proxy.spec
    overrides = spec.resource_overrides.proxy_deployment if spec.resource_overrides else None
    secret_names = {e["name"] for e in rendered.env}
    container = common.front_container(
        CONTAINER,
        settings,
        ["proxy", "--config", f"{CONFIG_DIR}/{CONFIG_KEY}", "--host", "0.0.0.0"],
        spec.proxy_port,
        env=[*rendered.env, *(e for e in common.plain_env(overrides) if e["name"] not in secret_names)],
        resources=spec.resources,
    )
    pod = FrontPod(
        container,
        account=spec.service_account or names.account,
        # the remote proxy talks to the Kubernetes API only to fetch the cluster's JWKS
        automount_token=uses_cluster_auth(spec.oidc_config),
        config_map=names.config,
        digest=rendered.digest,
        replicas=spec.replicas,
        patch=spec.pod_template_spec,
        overrides=overrides,
        oidc_ca_bundle=oidc_ca_bundle_ref(spec.oidc_config),
    )
    return common.front_deployment(Owner.of(proxy, owner_ref), names.proxy, pod)
