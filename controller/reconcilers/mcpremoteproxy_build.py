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
from typing import Any

from api.auth_config import HeaderForwardConfig, HeaderFromSecret
from api.common import HeaderForward
from api.mcpexternalauthconfig import MCPExternalAuthConfig
from api.mcpremoteproxy import MCPRemoteProxy
from api.mcptoolconfig import MCPToolConfig
from api.proxy_config import AuditConfig, HttpBackend, ProxyConfig, dump_proxy_config
from controller.reconcilers import children
from controller.reconcilers.children import CONFIG_HASH_ANNOTATION, JSON, labels, object_meta, selector_labels
from controller.reconcilers.podtemplate import (
    RESTRICTED_POD_SECURITY,
    apply_user_patch,
    container_security,
)
from controller.reconcilers.render import SecretEnv, inbound_oidc, outbound_auth, tool_filter
from controller.reconcilers.settings import ReconcilerSettings

KIND = "MCPRemoteProxy"
CONFIG_KEY = "proxy.json"
CONFIG_DIR = "/etc/mcp-operator"
CONTAINER = "proxy"


@dataclass(frozen=True)
class Names:
    """Names of an MCPRemoteProxy's children."""

    name: str

    @property
    def proxy(self) -> str:
        """Deployment and Service (``children.child_name``: a DNS-1123 label of at most 63)."""
        return children.child_name(self.name)

    @property
    def config(self) -> str:
        return children.child_name(self.name, "-proxy")

    @property
    def account(self) -> str:
        return self.config


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
    host = f"{Names(proxy.metadata.name).proxy}.{proxy.metadata.namespace}.svc.{settings.cluster_domain}"
    return f"http://{host}:{proxy.spec.proxy_port}{endpoint_path(proxy)}"


def header_forward(forward: HeaderForward | None, secrets: SecretEnv) -> HeaderForwardConfig | None:
    """``spec.headerForward`` as the proxy's extra upstream headers (secret values as env references)."""
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


def render_config(
    proxy: MCPRemoteProxy,
    settings: ReconcilerSettings,
    tool_config: MCPToolConfig | None,
    external_auth: MCPExternalAuthConfig | None,
) -> Rendered:
    """The proxy's configuration. Raises ValueError when the referenced auth config cannot be rendered."""
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
        oidc=inbound_oidc(spec.oidc_config, default_audience=url, default_resource_url=url),
        audit=AuditConfig(enabled=bool(spec.audit and spec.audit.enabled)),
    )
    text = dump_proxy_config(config)
    return Rendered(config, text, children.config_hash(text), secrets.env())


def build_children(
    proxy: MCPRemoteProxy, owner_ref: JSON, settings: ReconcilerSettings, rendered: Rendered
) -> list[JSON]:
    """Every child manifest of ``proxy`` (apply bodies: only the fields we own)."""
    objects = [build_config_map(proxy, owner_ref, rendered.text)]
    if proxy.spec.service_account is None:
        objects.append(build_service_account(proxy, owner_ref))
    objects += [
        build_deployment(proxy, owner_ref, settings, rendered),
        build_service(proxy, owner_ref),
    ]
    return objects


def _meta(proxy: MCPRemoteProxy, name: str, owner_ref: JSON, **kwargs: Any) -> JSON:
    return object_meta(
        name,
        proxy.metadata.namespace or "",
        owner_ref,
        labels(KIND, proxy.metadata.name or "", "proxy"),
        **kwargs,
    )


def build_config_map(proxy: MCPRemoteProxy, owner_ref: JSON, config_text: str) -> JSON:
    names = Names(proxy.metadata.name or "")
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(proxy, names.config, owner_ref),
        "data": {CONFIG_KEY: config_text},
    }


def build_service_account(proxy: MCPRemoteProxy, owner_ref: JSON) -> JSON:
    names = Names(proxy.metadata.name or "")
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _meta(proxy, names.account, owner_ref),
        "automountServiceAccountToken": False,
    }


def _container(proxy: MCPRemoteProxy, settings: ReconcilerSettings, env: list[JSON]) -> JSON:
    spec = proxy.spec
    overrides = spec.resource_overrides.proxy_deployment if spec.resource_overrides else None
    container: JSON = {
        "name": CONTAINER,
        "image": settings.proxy_image,
        "imagePullPolicy": settings.proxy_image_pull_policy,
        "args": ["proxy", "--config", f"{CONFIG_DIR}/{CONFIG_KEY}", "--host", "0.0.0.0"],
        "ports": [{"name": "http", "containerPort": spec.proxy_port, "protocol": "TCP"}],
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
    plain = [
        {"name": e.name, "value": e.value} for e in (overrides.env if overrides and overrides.env else [])
    ]
    secret_names = {e["name"] for e in env}
    merged = [*env, *(e for e in plain if e["name"] not in secret_names)]
    if merged:
        container["env"] = merged
    if spec.resources is not None:
        container["resources"] = spec.resources.model_dump(exclude_none=True)
    return container


def build_deployment(
    proxy: MCPRemoteProxy, owner_ref: JSON, settings: ReconcilerSettings, rendered: Rendered
) -> JSON:
    names = Names(proxy.metadata.name or "")
    instance = proxy.metadata.name or ""
    spec = proxy.spec
    overrides = spec.resource_overrides.proxy_deployment if spec.resource_overrides else None
    pod_overrides = overrides.pod_template_metadata_overrides if overrides else None
    container = _container(proxy, settings, rendered.env)
    pod_spec: JSON = {
        "serviceAccountName": spec.service_account or names.account,
        "automountServiceAccountToken": False,
        "securityContext": dict(RESTRICTED_POD_SECURITY),
        "containers": [container],
        "volumes": [
            {"name": "config", "configMap": {"name": names.config}},
            {"name": "tmp", "emptyDir": {}},
        ],
    }
    if overrides and overrides.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": s.name} for s in overrides.image_pull_secrets]
    selector = selector_labels(KIND, instance, "proxy")
    template: JSON = {
        "metadata": {
            "labels": {
                **((pod_overrides.labels or {}) if pod_overrides else {}),
                **labels(KIND, instance, "proxy"),
            },
            "annotations": {
                **((pod_overrides.annotations or {}) if pod_overrides else {}),
                CONFIG_HASH_ANNOTATION: rendered.digest,
            },
        },
        "spec": pod_spec,
    }
    owned = {k: container[k] for k in ("name", "image", "args")}
    template = apply_user_patch(template, spec.pod_template_spec, owned, selector)
    template["metadata"].setdefault("annotations", {})[CONFIG_HASH_ANNOTATION] = rendered.digest
    body: JSON = {"selector": {"matchLabels": selector}, "template": template}
    if spec.replicas is not None:
        body["replicas"] = spec.replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(
            proxy,
            names.proxy,
            owner_ref,
            extra_labels=overrides.labels if overrides else None,
            annotations=overrides.annotations if overrides else None,
        ),
        "spec": body,
    }


def build_service(proxy: MCPRemoteProxy, owner_ref: JSON) -> JSON:
    names = Names(proxy.metadata.name or "")
    overrides = proxy.spec.resource_overrides.proxy_service if proxy.spec.resource_overrides else None
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(
            proxy,
            names.proxy,
            owner_ref,
            extra_labels=overrides.labels if overrides else None,
            annotations=overrides.annotations if overrides else None,
        ),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(KIND, proxy.metadata.name or "", "proxy"),
            "ports": [
                {"name": "http", "port": proxy.spec.proxy_port, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }
