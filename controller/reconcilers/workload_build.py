"""What the children of every workload kind share (pure): names, labels and metadata, the front
Deployment (proxy or gateway) and its Service, the config ConfigMap, the ServiceAccount and namespaced RBAC.

The kinds' own modules (``mcpserver_build``, ``mcpremoteproxy_build``, ``virtualmcpserver_build``) decide
what differs (the configuration, the container's arguments, the server StatefulSet) and call these. The
front Deployment re-imposes the annotations the operator owns (:data:`OWNED_ANNOTATIONS`) AFTER merging
the user's ``podTemplateSpec``, so no kind's patch can pin the config hash and stop a config change from
rolling the pods.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from api.common import (
    CABundleSource,
    ProxyDeploymentOverrides,
    ProxyEndpoint,
    ResourceOverrides,
    ResourceRequirements,
)
from api.podtemplate import CONFIG_HASH_ANNOTATION
from api.resource import CustomResource
from api.scaling import PodDisruptionBudgetSpec
from controller.reconcilers import children
from controller.reconcilers.children import JSON, labels, object_meta, selector_labels
from controller.reconcilers.podtemplate import RESTRICTED_POD_SECURITY, apply_user_patch, container_security
from controller.reconcilers.render import OIDC_CA_BUNDLE_DIR, OIDC_CA_BUNDLE_FILE
from controller.reconcilers.settings import ReconcilerSettings

CONFIG_DIR = "/etc/mcp-operator"
OWNED_ANNOTATIONS = (CONFIG_HASH_ANNOTATION,)
"""Pod-template annotations no ``podTemplateSpec`` can set: the operator's value always wins."""
OWNED_CONTAINER_FIELDS = ("name", "image", "args")
"""Fields of the front container a ``podTemplateSpec`` cannot change."""


class MetadataAdditions(Protocol):
    """What a ``resourceOverrides`` entry adds to one object: labels and annotations."""

    @property
    def labels(self) -> dict[str, str] | None: ...

    @property
    def annotations(self) -> dict[str, str] | None: ...


@dataclass(frozen=True)
class WorkloadNames:
    """Names of the children every workload has: ``children.child_name`` keeps each a DNS-1123 label
    within its Kubernetes limit (a long or dotted name is cut and gets a stable hash)."""

    name: str
    config_suffix: str = "-proxy"

    @property
    def proxy(self) -> str:
        """The front Deployment and its Service."""
        return children.child_name(self.name)

    @property
    def config(self) -> str:
        return children.child_name(self.name, self.config_suffix)

    @property
    def account(self) -> str:
        return self.config


@dataclass(frozen=True)
class Owner:
    """The workload whose children are built, and the ``component`` label of its front pods."""

    kind: str
    name: str
    namespace: str
    ref: JSON
    component: str = "proxy"

    @classmethod
    def of(cls, obj: CustomResource, ref: JSON, component: str = "proxy") -> Owner:
        return cls(obj.KIND, obj.metadata.name or "", obj.metadata.namespace or "", ref, component)

    def labels(self, component: str | None = None) -> dict[str, str]:
        return labels(self.kind, self.name, component or self.component)

    def selector(self, component: str | None = None) -> dict[str, str]:
        return selector_labels(self.kind, self.name, component or self.component)

    def meta(
        self,
        name: str,
        component: str | None = None,
        overrides: MetadataAdditions | None = None,
    ) -> JSON:
        """metadata of a child: our labels win over the user's extra labels on a key collision."""
        return object_meta(
            name,
            self.namespace,
            self.ref,
            self.labels(component),
            extra_labels=overrides.labels if overrides else None,
            annotations=overrides.annotations if overrides else None,
        )


def config_map(owner: Owner, name: str, data: dict[str, str], component: str | None = None) -> JSON:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": owner.meta(name, component), "data": data}


def service_account(
    owner: Owner,
    name: str,
    *,
    automount: bool,
    component: str | None = None,
    overrides: ProxyDeploymentOverrides | None = None,
) -> JSON:
    """``automount``: whether the pods get an API token (only those that call the Kubernetes API).

    The proxy's pull secrets go on its account too (as ToolHive does), so pods that run under it through
    another path than the Deployment (a debug copy, a sidecar injector's job) can pull the image as well."""
    account: JSON = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": owner.meta(name, component),
        "automountServiceAccountToken": automount,
    }
    secrets = pull_secrets(overrides)
    if secrets:
        account["imagePullSecrets"] = secrets
    return account


def pull_secrets(overrides: ProxyDeploymentOverrides | None) -> list[JSON]:
    """``resourceOverrides.proxyDeployment.imagePullSecrets`` as a pod's (or an account's) list."""
    return [{"name": s.name} for s in (overrides.image_pull_secrets if overrides else None) or []]


def role(owner: Owner, name: str, rules: list[JSON]) -> JSON:
    """A namespaced Role; ``rules`` should name their objects (``resourceNames``)."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": owner.meta(name),
        "rules": rules,
    }


def role_binding(owner: Owner, name: str, account: str) -> JSON:
    """Binds Role ``name`` to ServiceAccount ``account`` of the owner's namespace."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": owner.meta(name),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": owner.namespace}],
    }


def service(
    owner: Owner,
    name: str,
    port: int,
    *,
    port_name: str = "http",
    service_type: str | None = "ClusterIP",
    component: str | None = None,
    overrides: MetadataAdditions | None = None,
    session_affinity: str | None = None,
) -> JSON:
    """A Service selecting the ``component`` pods; ``service_type`` None makes it headless."""
    spec: JSON = {"type": service_type} if service_type is not None else {"clusterIP": "None"}
    spec["selector"] = owner.selector(component)
    if session_affinity is not None:
        spec["sessionAffinity"] = session_affinity
    spec["ports"] = [{"name": port_name, "port": port, "targetPort": port_name, "protocol": "TCP"}]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": owner.meta(name, component, overrides),
        "spec": spec,
    }


def proxy_service(owner: Owner, spec: ProxyEndpoint, port: int, overrides: ResourceOverrides) -> JSON:
    """The Service clients use to reach a proxy kind (MCPServer, MCPRemoteProxy): ``<name>``."""
    name = WorkloadNames(owner.name).proxy
    return service(
        owner, name, port, overrides=overrides.proxy_service, session_affinity=spec.session_affinity
    )


def front_container(
    name: str,
    settings: ReconcilerSettings,
    args: list[str],
    port: int,
    *,
    env: list[JSON],
    resources: ResourceRequirements | None,
) -> JSON:
    """The operator's own image (proxy or gateway) serving ``port``, its config mounted read-only."""
    container: JSON = {
        "name": name,
        "image": settings.proxy_image,
        "imagePullPolicy": settings.proxy_image_pull_policy,
        "args": args,
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
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
    if env:
        container["env"] = env
    if resources is not None:
        container["resources"] = resources.model_dump(exclude_none=True)
    return container


def plain_env(overrides: ProxyDeploymentOverrides | None) -> list[JSON]:
    """``resourceOverrides.proxyDeployment.env`` as container env entries."""
    return [{"name": e.name, "value": e.value} for e in (overrides.env if overrides else None) or []]


@dataclass(frozen=True)
class FrontPod:
    """What varies in the front Deployment's pod between kinds."""

    container: JSON
    account: str
    automount_token: bool
    config_map: str
    digest: str
    """The config hash annotation's value: a change rolls the pods."""
    replicas: int | None = None
    """None: not ours to set (an HPA may own the count)."""
    patch: JSON | None = None
    """The user's ``podTemplateSpec``, merged over the pod before the owned fields are re-imposed."""
    overrides: ProxyDeploymentOverrides | None = None
    strategy: JSON | None = None
    oidc_ca_bundle: CABundleSource | None = None
    """The ConfigMap key of the inbound OIDC provider's CA certificates, mounted read-only."""


def front_deployment(owner: Owner, name: str, pod: FrontPod) -> JSON:
    """The proxy or gateway Deployment; the owned annotations and container fields win over any patch."""
    overrides = pod.overrides
    pod_overrides = overrides.pod_template_metadata_overrides if overrides else None
    container, volumes = (
        pod.container,
        [
            {"name": "config", "configMap": {"name": pod.config_map}},
            {"name": "tmp", "emptyDir": {}},
        ],
    )
    if pod.oidc_ca_bundle is not None:
        ref = pod.oidc_ca_bundle.config_map_ref
        items = [{"key": ref.key, "path": OIDC_CA_BUNDLE_FILE}]
        volumes.append({"name": "oidc-ca-bundle", "configMap": {"name": ref.name, "items": items}})
        mount = {"name": "oidc-ca-bundle", "mountPath": OIDC_CA_BUNDLE_DIR, "readOnly": True}
        container = {**container, "volumeMounts": [*container["volumeMounts"], mount]}
    pod_spec: JSON = {
        "serviceAccountName": pod.account,
        "automountServiceAccountToken": pod.automount_token,
        "securityContext": dict(RESTRICTED_POD_SECURITY),
        "containers": [container],
        "volumes": volumes,
    }
    if secrets := pull_secrets(overrides):
        pod_spec["imagePullSecrets"] = secrets
    owned_annotations = {CONFIG_HASH_ANNOTATION: pod.digest}
    metadata: JSON = {
        "labels": {**((pod_overrides.labels or {}) if pod_overrides else {}), **owner.labels()},
        "annotations": {**((pod_overrides.annotations or {}) if pod_overrides else {}), **owned_annotations},
    }
    owned_container = {k: container[k] for k in OWNED_CONTAINER_FIELDS}
    template = apply_user_patch(
        {"metadata": metadata, "spec": pod_spec}, pod.patch, owned_container, owner.selector()
    )
    template["metadata"]["annotations"] = {
        **(template["metadata"].get("annotations") or {}),
        **owned_annotations,
    }
    spec: JSON = {"selector": {"matchLabels": owner.selector()}, "template": template}
    if pod.replicas is not None:
        spec["replicas"] = pod.replicas
    if pod.strategy is not None:
        spec["strategy"] = pod.strategy
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": owner.meta(name, overrides=overrides),
        "spec": spec,
    }


def disruption_budget(
    owner: Owner, name: str, budget: PodDisruptionBudgetSpec | None, settings: ReconcilerSettings
) -> list[JSON]:
    """The PodDisruptionBudget over the front pods, or nothing when the spec has none (then pruning
    deletes the one a previous spec asked for). The selector is the front Deployment's."""
    if budget is None:
        return []
    spec: JSON = {"selector": {"matchLabels": owner.selector()}}
    if budget.min_available is not None:
        spec["minAvailable"] = budget.min_available
    if budget.max_unavailable is not None:
        spec["maxUnavailable"] = budget.max_unavailable
    return [
        {
            "apiVersion": settings.disruption_budget.api_version,
            "kind": "PodDisruptionBudget",
            "metadata": owner.meta(name),
            "spec": spec,
        }
    ]


def status_url(name: str, namespace: str | None, settings: ReconcilerSettings, port: int, path: str) -> str:
    """``status.url``: the front Service's in-cluster URL."""
    host = f"{children.child_name(name)}.{namespace}.svc.{settings.cluster_domain}"
    return f"http://{host}:{port}{path}"
