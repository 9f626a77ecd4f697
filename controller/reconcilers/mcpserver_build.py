"""Desired state of an MCPServer: pure functions from the typed spec to the child manifests.

Children (``../shared`` design, section 4), all owned by the MCPServer:

- StatefulSet ``<name>-server``: the user's image as container ``mcp``;
- headless Service ``<name>-server`` (HTTP transports only);
- Deployment ``<name>``: the proxy, with the proxy configuration's hash in a pod-template annotation;
- Service ``<name>``: the endpoint clients use;
- ConfigMap ``<name>-proxy``: the proxy configuration (``proxy.json``; never a secret value);
- ServiceAccounts ``<name>-proxy`` and ``<name>-server`` (the latter only without ``spec.serviceAccount``);
- Role + RoleBinding ``<name>-proxy`` (stdio only): get/watch the server pod and attach to it, by name.

Replica rules: ``replicas`` scales the proxy Deployment; for HTTP transports the server StatefulSet
follows ``backendReplicas``, else ``replicas``. Unset counts are not applied at all, so an HPA can own
them. A stdio server always has exactly one server pod and one proxy replica; ``replicas: 0`` stops both.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.authz import cedar_config
from api.authz_config import CedarConfig
from api.common import ResourceOverrides
from api.mcpexternalauthconfig import MCPExternalAuthConfig
from api.mcpserver import MCPServer
from api.mcptoolconfig import MCPToolConfig
from api.proxy_config import (
    AttachBackend,
    AuditConfig,
    BackendConfig,
    HttpBackend,
    ProxyConfig,
    dump_proxy_config,
)
from api.rules import DEFAULT_MCP_PORT
from controller.reconcilers import children
from controller.reconcilers import workload_build as common
from controller.reconcilers.auth_server_render import embedded_auth_server
from controller.reconcilers.children import JSON
from controller.reconcilers.podtemplate import (
    RESTRICTED_POD_SECURITY,
    SERVER_USER,
    apply_user_patch,
    container_security,
)
from controller.reconcilers.render import (
    SecretEnv,
    inbound_oidc,
    oidc_ca_bundle_ref,
    outbound_auth,
    tool_filter,
    uses_cluster_auth,
)
from controller.reconcilers.scaling_render import rate_limit_config, session_storage_config
from controller.reconcilers.settings import ReconcilerSettings
from controller.reconcilers.workload_build import CONFIG_DIR, FrontPod, Owner, WorkloadNames

CONFIG_KEY = "proxy.json"


@dataclass(frozen=True)
class Names(WorkloadNames):
    """Names of an MCPServer's children (the front ones from :class:`WorkloadNames`)."""

    @property
    def server(self) -> str:
        """StatefulSet and headless Service."""
        return children.child_name(self.name, "-server", children.MAX_STATEFULSET_NAME)

    @property
    def server_pod(self) -> str:
        return f"{self.server}-0"

    @property
    def proxy_account(self) -> str:
        return self.account

    @property
    def server_account(self) -> str:
        return self.server


def is_stdio(server: MCPServer) -> bool:
    return server.spec.transport == "stdio"


def mcp_port(server: MCPServer) -> int:
    return server.spec.mcp_port or DEFAULT_MCP_PORT


def endpoint_path(server: MCPServer) -> str:
    """``/sse`` for SSE servers (and stdio servers exposed in SSE mode), else ``/mcp``."""
    sse = server.spec.transport == "sse" or (is_stdio(server) and server.spec.proxy_mode == "sse")
    return "/sse" if sse else "/mcp"


def service_url(server: MCPServer, settings: ReconcilerSettings) -> str:
    """``status.url``: the proxy Service's in-cluster URL (follows proxyPort changes)."""
    name, namespace = server.metadata.name or "", server.metadata.namespace
    return common.status_url(name, namespace, settings, server.spec.proxy_port, endpoint_path(server))


def proxy_replicas(server: MCPServer) -> int | None:
    """The proxy Deployment's replica count to apply (None: not ours to set)."""
    if is_stdio(server):
        return 0 if server.spec.replicas == 0 else 1
    return server.spec.replicas


def server_replicas(server: MCPServer) -> int | None:
    """The server StatefulSet's replica count to apply (None: not ours to set)."""
    if server.spec.replicas == 0:
        return 0
    if is_stdio(server):
        return 1
    return server.spec.backend_replicas if server.spec.backend_replicas is not None else server.spec.replicas


def build_proxy_config(
    server: MCPServer,
    settings: ReconcilerSettings,
    tool_config: MCPToolConfig | None,
    external_auth: MCPExternalAuthConfig | None = None,
    secrets: SecretEnv | None = None,
    *,
    authz: CedarConfig | None = None,
    auth_server: MCPExternalAuthConfig | None = None,
) -> ProxyConfig:
    """The proxy's configuration: where the server is, which tools show, inbound and outbound auth, audit.

    The outbound credential (HTTP transports only) names Secret keys as environment variables, which
    are registered in ``secrets``. Raises ValueError when the runtime refuses the auth settings.
    """
    names = Names(server.metadata.name or "")
    namespace = server.metadata.namespace or ""
    backend: BackendConfig
    if is_stdio(server):
        backend = AttachBackend(namespace=namespace, pod=names.server_pod, container="mcp")
    else:
        host = f"{names.server}.{namespace}.svc.{settings.cluster_domain}"
        path = "/sse" if server.spec.transport == "sse" else "/mcp"
        transport = "sse" if server.spec.transport == "sse" else "streamable-http"
        auth = None
        if external_auth is not None:
            auth = outbound_auth(external_auth.spec, secrets if secrets is not None else SecretEnv())
        backend = HttpBackend(
            url=f"http://{host}:{mcp_port(server)}{path}",
            transport=transport,
            auth=auth,
        )
    url = service_url(server, settings)
    audit = server.spec.audit
    endpoint = "/sse" if server.spec.transport == "sse" else "/mcp"
    return ProxyConfig(
        name=names.name,
        host="0.0.0.0",
        port=server.spec.proxy_port,
        backend=backend,
        tool_filter=tool_filter(tool_config),
        oidc=inbound_oidc(
            server.spec.oidc_config,
            default_audience=url,
            default_resource_url=url,
            namespace=server.metadata.namespace or "",
        ),
        authz=authz or (cedar_config(server.spec.authz_config) if server.spec.authz_config else None),
        audit=AuditConfig(enabled=bool(audit and audit.enabled)),
        session_storage=session_storage_config(
            server.spec.session_storage, secrets if secrets is not None else SecretEnv()
        ),
        rate_limiting=rate_limit_config(server.spec.rate_limiting),
        auth_server=embedded_auth_server(
            auth_server, namespace, endpoint, settings, secrets if secrets is not None else SecretEnv()
        ),
        endpoint_prefix=server.spec.endpoint_prefix or "",
        trust_proxy_headers=bool(server.spec.trust_proxy_headers),
    )


def build_children(
    server: MCPServer,
    owner_ref: JSON,
    settings: ReconcilerSettings,
    tool_config: MCPToolConfig | None,
    external_auth: MCPExternalAuthConfig | None = None,
    *,
    authz: CedarConfig | None = None,
    auth_server: MCPExternalAuthConfig | None = None,
) -> list[JSON]:
    """Every child manifest of ``server`` (apply bodies: only the fields we own); ``authz``: the policies
    of its MCPAuthzConfig, when it refers to one; ``auth_server``: its embedded authorization server.

    Raises ValueError when ``external_auth`` cannot be rendered (see :func:`build_proxy_config`).
    """
    secrets = SecretEnv()
    config = build_proxy_config(
        server, settings, tool_config, external_auth, secrets, authz=authz, auth_server=auth_server
    )
    config_text = dump_proxy_config(config)
    owner = Owner.of(server, owner_ref)
    names = Names(owner.name)
    overrides = _overrides(server)
    objects = [
        common.config_map(owner, names.config, {CONFIG_KEY: config_text}),
        common.service_account(
            owner, names.proxy_account, automount=_proxy_token(server), overrides=overrides.proxy_deployment
        ),
    ]
    if server.spec.service_account is None:
        objects.append(
            common.service_account(owner, names.server_account, automount=False, component="server")
        )
    objects += [
        build_server_statefulset(server, owner_ref),
        build_proxy_deployment(server, owner_ref, settings, children.config_hash(config_text), secrets.env()),
        common.proxy_service(owner, server.spec, server.spec.proxy_port, overrides),
        *common.disruption_budget(owner, names.proxy, server.spec.pod_disruption_budget, settings),
    ]
    policy = build_egress_policy(server, owner_ref)
    if policy is not None:
        objects.append(policy)
    if is_stdio(server):
        objects += [
            common.role(owner, names.proxy_account, _attach_rules(names.server_pod)),
            common.role_binding(owner, names.proxy_account, names.proxy_account),
        ]
    else:
        objects.append(
            common.service(
                owner, names.server, mcp_port(server), port_name="mcp", service_type=None, component="server"
            )
        )
    return objects


def build_egress_policy(server: MCPServer, owner_ref: JSON) -> JSON | None:
    """The NetworkPolicy of ``permissionProfile: {type: builtin, name: none}``: the server pods may send
    nothing (an Egress policy without rules). Other profiles allow egress: no policy (a stale one is pruned).

    Ingress stays open: the proxy reaches an HTTP server through its Service, and a stdio server through
    the Kubernetes attach API, which the policy does not cover. Only a network plugin that enforces
    NetworkPolicy enforces it.
    """
    profile = server.spec.permission_profile
    if profile is None or (profile.type, profile.name) != ("builtin", "none"):
        return None
    owner = Owner.of(server, owner_ref, component="server")
    # No "egress" key: an empty list is the same policy, but the API server drops it, and a field it
    # drops would make every reconcile see a difference and write again.
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": owner.meta(Names(owner.name).server),
        "spec": {"podSelector": {"matchLabels": owner.selector()}, "policyTypes": ["Egress"]},
    }


def _overrides(server: MCPServer) -> ResourceOverrides:
    return server.spec.resource_overrides or ResourceOverrides()


def _server_env(server: MCPServer) -> list[JSON]:
    env: list[JSON] = []
    if not any(e.name == "HOME" for e in server.spec.env or []):
        # The image's HOME (often /root) is not writable by SERVER_USER; /tmp is, as ToolHive does.
        # First, so that entries the user adds later keep the order the API server gives them.
        env.append({"name": "HOME", "value": "/tmp"})
    env.extend({"name": e.name, "value": e.value} for e in server.spec.env or [])
    for secret in server.spec.secrets or []:
        env.append(
            {
                "name": secret.env_name,
                "valueFrom": {"secretKeyRef": {"name": secret.name, "key": secret.key}},
            }
        )
    return env


def build_server_statefulset(server: MCPServer, owner_ref: JSON) -> JSON:
    owner = Owner.of(server, owner_ref, component="server")
    names = Names(owner.name)
    owned: JSON = {"name": "mcp", "image": server.spec.image}
    if server.spec.args:
        owned["args"] = list(server.spec.args)
    if is_stdio(server):
        owned.update({"stdin": True, "stdinOnce": False, "tty": False})
    container: JSON = {
        **owned,
        "securityContext": container_security(read_only_root=False),
    }
    env = _server_env(server)
    if env:
        container["env"] = env
    if server.spec.resources is not None:
        container["resources"] = server.spec.resources.model_dump(exclude_none=True)
    if not is_stdio(server):
        container["ports"] = [{"name": "mcp", "containerPort": mcp_port(server), "protocol": "TCP"}]
    pod_spec: JSON = {
        "serviceAccountName": server.spec.service_account or names.server_account,
        "automountServiceAccountToken": False,
        "securityContext": {**RESTRICTED_POD_SECURITY, **SERVER_USER},
        "containers": [container],
    }
    if server.spec.volumes:
        volumes = server.spec.volumes
        pod_spec["volumes"] = [{"name": v.name, "hostPath": {"path": v.host_path}} for v in volumes]
        container["volumeMounts"] = [
            {"name": v.name, "mountPath": v.mount_path, "readOnly": v.read_only} for v in volumes
        ]
    template = {"metadata": {"labels": owner.labels()}, "spec": pod_spec}
    template = apply_user_patch(template, server.spec.pod_template_spec, owned, owner.selector())
    spec: JSON = {
        "serviceName": names.server,
        # Parallel, not OrderedReady: an ordered StatefulSet never replaces a pod that is not Ready, so a
        # server pod broken by its spec (bad image, wrong user) would stay broken after the spec is fixed.
        "podManagementPolicy": "Parallel",
        "selector": {"matchLabels": owner.selector()},
        "template": template,
    }
    replicas = server_replicas(server)
    if replicas is not None:
        spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": owner.meta(names.server),
        "spec": spec,
    }


def build_proxy_deployment(
    server: MCPServer,
    owner_ref: JSON,
    settings: ReconcilerSettings,
    digest: str,
    secret_env: list[JSON] | None = None,
) -> JSON:
    """The proxy; ``secret_env``: the ``secretKeyRef`` variables its configuration names."""
    names = Names(server.metadata.name or "")
    overrides = _overrides(server).proxy_deployment
    container = common.front_container(
        "proxy",
        settings,
        ["proxy", "--config", f"{CONFIG_DIR}/{CONFIG_KEY}", "--host", "0.0.0.0"],
        server.spec.proxy_port,
        env=[*common.plain_env(overrides), *(secret_env or [])],
        resources=server.spec.proxy_resources,
    )
    pod = FrontPod(
        container,
        account=names.proxy_account,
        automount_token=_proxy_token(server),
        config_map=names.config,
        digest=digest,
        replicas=proxy_replicas(server),
        overrides=overrides,
        # One process behind one stdin: never run two proxies against it, even during a rollout.
        strategy={"type": "Recreate"} if is_stdio(server) else None,
        oidc_ca_bundle=oidc_ca_bundle_ref(server.spec.oidc_config),
    )
    return common.front_deployment(Owner.of(server, owner_ref), names.proxy, pod)


def _attach_rules(pod: str) -> list[JSON]:
    """Only what attaching to a stdio server takes, limited to that one pod by name."""
    return [
        {"apiGroups": [""], "resources": ["pods"], "resourceNames": [pod], "verbs": ["get", "watch"]},
        {"apiGroups": [""], "resources": ["pods/attach"], "resourceNames": [pod], "verbs": ["create", "get"]},
    ]


def _proxy_token(server: MCPServer) -> bool:
    """The proxy pod mounts its service account token: to attach to a stdio server's pod, and to fetch
    the cluster's JWKS when it accepts service account tokens."""
    return is_stdio(server) or uses_cluster_auth(server.spec.oidc_config)
