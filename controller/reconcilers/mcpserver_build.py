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
from typing import Any

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
from controller.reconcilers.children import CONFIG_HASH_ANNOTATION, JSON, labels, object_meta, selector_labels
from controller.reconcilers.podtemplate import (
    RESTRICTED_POD_SECURITY,
    apply_user_patch,
    container_security,
)
from controller.reconcilers.render import SecretEnv, inbound_oidc, outbound_auth, tool_filter
from controller.reconcilers.settings import ReconcilerSettings

KIND = "MCPServer"
CONFIG_KEY = "proxy.json"
CONFIG_DIR = "/etc/mcp-operator"


@dataclass(frozen=True)
class Names:
    """Names of an MCPServer's children: ``children.child_name`` keeps each a DNS-1123 label within its
    Kubernetes limit (a long or dotted name is cut and gets a stable hash)."""

    name: str

    @property
    def proxy(self) -> str:
        """Deployment and Service."""
        return children.child_name(self.name)

    @property
    def server(self) -> str:
        """StatefulSet and headless Service."""
        return children.child_name(self.name, "-server", children.MAX_STATEFULSET_NAME)

    @property
    def server_pod(self) -> str:
        return f"{self.server}-0"

    @property
    def config(self) -> str:
        return children.child_name(self.name, "-proxy")

    @property
    def proxy_account(self) -> str:
        return self.config

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
    host = f"{Names(server.metadata.name).proxy}.{server.metadata.namespace}.svc.{settings.cluster_domain}"
    return f"http://{host}:{server.spec.proxy_port}{endpoint_path(server)}"


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
    return ProxyConfig(
        name=names.name,
        host="0.0.0.0",
        port=server.spec.proxy_port,
        backend=backend,
        tool_filter=tool_filter(tool_config),
        oidc=inbound_oidc(server.spec.oidc_config, default_audience=url, default_resource_url=url),
        audit=AuditConfig(enabled=bool(audit and audit.enabled)),
    )


def build_children(
    server: MCPServer,
    owner_ref: JSON,
    settings: ReconcilerSettings,
    tool_config: MCPToolConfig | None,
    external_auth: MCPExternalAuthConfig | None = None,
) -> list[JSON]:
    """Every child manifest of ``server`` (apply bodies: only the fields we own).

    Raises ValueError when ``external_auth`` cannot be rendered (see :func:`build_proxy_config`).
    """
    secrets = SecretEnv()
    config_text = dump_proxy_config(build_proxy_config(server, settings, tool_config, external_auth, secrets))
    digest = children.config_hash(config_text)
    objects = [
        build_config_map(server, owner_ref, config_text),
        *build_service_accounts(server, owner_ref),
        build_server_statefulset(server, owner_ref),
        build_proxy_deployment(server, owner_ref, settings, digest, secrets.env()),
        build_proxy_service(server, owner_ref),
    ]
    if is_stdio(server):
        objects += [build_proxy_role(server, owner_ref), build_proxy_role_binding(server, owner_ref)]
    else:
        objects.append(build_server_headless_service(server, owner_ref))
    return objects


def _meta(server: MCPServer, name: str, owner_ref: JSON, component: str, **kwargs: Any) -> JSON:
    return object_meta(
        name,
        server.metadata.namespace or "",
        owner_ref,
        labels(KIND, server.metadata.name or "", component),
        **kwargs,
    )


def build_config_map(server: MCPServer, owner_ref: JSON, config_text: str) -> JSON:
    names = Names(server.metadata.name or "")
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(server, names.config, owner_ref, "proxy"),
        "data": {CONFIG_KEY: config_text},
    }


def build_service_accounts(server: MCPServer, owner_ref: JSON) -> list[JSON]:
    """The proxy's account (it needs a token only to attach to a stdio server) and the server's."""
    names = Names(server.metadata.name or "")
    accounts = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": _meta(server, names.proxy_account, owner_ref, "proxy"),
            "automountServiceAccountToken": is_stdio(server),
        }
    ]
    if server.spec.service_account is None:
        accounts.append(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": _meta(server, names.server_account, owner_ref, "server"),
                "automountServiceAccountToken": False,
            }
        )
    return accounts


def _server_env(server: MCPServer) -> list[JSON]:
    env: list[JSON] = [{"name": e.name, "value": e.value} for e in server.spec.env or []]
    for secret in server.spec.secrets or []:
        env.append(
            {
                "name": secret.env_name,
                "valueFrom": {"secretKeyRef": {"name": secret.name, "key": secret.key}},
            }
        )
    return env


def build_server_statefulset(server: MCPServer, owner_ref: JSON) -> JSON:
    names = Names(server.metadata.name or "")
    instance = server.metadata.name or ""
    selector = selector_labels(KIND, instance, "server")
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
        "securityContext": dict(RESTRICTED_POD_SECURITY),
        "containers": [container],
    }
    template = {"metadata": {"labels": labels(KIND, instance, "server")}, "spec": pod_spec}
    template = apply_user_patch(template, server.spec.pod_template_spec, owned, selector)
    spec: JSON = {
        "serviceName": names.server,
        "selector": {"matchLabels": selector},
        "template": template,
    }
    replicas = server_replicas(server)
    if replicas is not None:
        spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _meta(server, names.server, owner_ref, "server"),
        "spec": spec,
    }


def build_server_headless_service(server: MCPServer, owner_ref: JSON) -> JSON:
    names = Names(server.metadata.name or "")
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(server, names.server, owner_ref, "server"),
        "spec": {
            "clusterIP": "None",
            "selector": selector_labels(KIND, server.metadata.name or "", "server"),
            "ports": [{"name": "mcp", "port": mcp_port(server), "targetPort": "mcp", "protocol": "TCP"}],
        },
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
    instance = server.metadata.name or ""
    overrides = server.spec.resource_overrides.proxy_deployment if server.spec.resource_overrides else None
    pod_overrides = overrides.pod_template_metadata_overrides if overrides else None
    container: JSON = {
        "name": "proxy",
        "image": settings.proxy_image,
        "imagePullPolicy": settings.proxy_image_pull_policy,
        "args": ["proxy", "--config", f"{CONFIG_DIR}/{CONFIG_KEY}", "--host", "0.0.0.0"],
        "ports": [{"name": "http", "containerPort": server.spec.proxy_port, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5},
        "livenessProbe": {
            "httpGet": {"path": "/health", "port": "http"},
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "securityContext": container_security(read_only_root=True),
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    env = [{"name": e.name, "value": e.value} for e in (overrides.env if overrides else None) or []]
    env += secret_env or []
    if env:
        container["env"] = env
    if server.spec.proxy_resources is not None:
        container["resources"] = server.spec.proxy_resources.model_dump(exclude_none=True)
    pod_spec: JSON = {
        "serviceAccountName": names.proxy_account,
        "automountServiceAccountToken": is_stdio(server),
        "securityContext": dict(RESTRICTED_POD_SECURITY),
        "containers": [container],
        "volumes": [
            {"name": "config", "configMap": {"name": names.config}},
            {"name": "tmp", "emptyDir": {}},
        ],
    }
    if overrides and overrides.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": s.name} for s in overrides.image_pull_secrets]
    pod_labels = {
        **((pod_overrides.labels or {}) if pod_overrides else {}),
        **labels(KIND, instance, "proxy"),
    }
    pod_annotations = {
        **((pod_overrides.annotations or {}) if pod_overrides else {}),
        CONFIG_HASH_ANNOTATION: digest,
    }
    spec: JSON = {
        "selector": {"matchLabels": selector_labels(KIND, instance, "proxy")},
        "template": {"metadata": {"labels": pod_labels, "annotations": pod_annotations}, "spec": pod_spec},
    }
    replicas = proxy_replicas(server)
    if replicas is not None:
        spec["replicas"] = replicas
    if is_stdio(server):
        # One process behind one stdin: never run two proxies against it, even during a rollout.
        spec["strategy"] = {"type": "Recreate"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(
            server,
            names.proxy,
            owner_ref,
            "proxy",
            extra_labels=overrides.labels if overrides else None,
            annotations=overrides.annotations if overrides else None,
        ),
        "spec": spec,
    }


def build_proxy_service(server: MCPServer, owner_ref: JSON) -> JSON:
    names = Names(server.metadata.name or "")
    overrides = server.spec.resource_overrides.proxy_service if server.spec.resource_overrides else None
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(
            server,
            names.proxy,
            owner_ref,
            "proxy",
            extra_labels=overrides.labels if overrides else None,
            annotations=overrides.annotations if overrides else None,
        ),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(KIND, server.metadata.name or "", "proxy"),
            "ports": [
                {"name": "http", "port": server.spec.proxy_port, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }


def build_proxy_role(server: MCPServer, owner_ref: JSON) -> JSON:
    """Only what attaching to a stdio server takes, limited to that one pod by name."""
    names = Names(server.metadata.name or "")
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _meta(server, names.proxy_account, owner_ref, "proxy"),
        "rules": [
            {
                "apiGroups": [""],
                "resources": ["pods"],
                "resourceNames": [names.server_pod],
                "verbs": ["get", "watch"],
            },
            {
                "apiGroups": [""],
                "resources": ["pods/attach"],
                "resourceNames": [names.server_pod],
                "verbs": ["create", "get"],
            },
        ],
    }


def build_proxy_role_binding(server: MCPServer, owner_ref: JSON) -> JSON:
    names = Names(server.metadata.name or "")
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _meta(server, names.proxy_account, owner_ref, "proxy"),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": names.proxy_account},
        "subjects": [
            {
                "kind": "ServiceAccount",
                "name": names.proxy_account,
                "namespace": server.metadata.namespace or "",
            }
        ],
    }
