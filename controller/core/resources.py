"""Resource descriptors and object keys: how the core names a kind and one object of it.

The core knows no custom kinds; callers describe their CRDs with :class:`Resource`. The constants below
cover the built-in kinds the reconcilers create or read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple


@dataclass(frozen=True)
class Resource:
    """One API kind: enough to build its REST paths and to recognise its objects."""

    group: str
    """API group; ``""`` for the core group (ConfigMap, Service, ...)."""
    version: str
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        """``apps/v1`` style, or ``v1`` for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    def collection_path(self, namespace: str | None = None) -> str:
        """The REST path of the collection, in one namespace or across all (``namespace=None``)."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            return f"{base}/namespaces/{namespace}/{self.plural}"
        if not self.namespaced and namespace:
            raise ValueError(f"{self.kind} is cluster-scoped; pass namespace=None, not '{namespace}'")
        return f"{base}/{self.plural}"

    def object_path(self, namespace: str | None, name: str, subresource: str = "") -> str:
        """The REST path of one object (optionally a subresource such as ``status``)."""
        if self.namespaced and not namespace:
            raise ValueError(f"{self.kind} '{name}' is namespaced; a namespace is required")
        path = f"{self.collection_path(namespace if self.namespaced else None)}/{name}"
        return f"{path}/{subresource}" if subresource else path

    def matches(self, obj: dict[str, Any]) -> bool:
        """True when ``obj`` (a raw dict) is of this kind."""
        return obj.get("kind") == self.kind and _group_of(str(obj.get("apiVersion", ""))) == self.group

    def __str__(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


def _group_of(api_version: str) -> str:
    return api_version.rpartition("/")[0]


class ObjectKey(NamedTuple):
    """The queue key of one object: ``namespace`` is ``""`` for cluster-scoped objects."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    @classmethod
    def of(cls, obj: dict[str, Any]) -> ObjectKey:
        """The key of a raw object."""
        meta = obj.get("metadata") or {}
        return cls(str(meta.get("namespace") or ""), str(meta["name"]))


DEPLOYMENT = Resource("apps", "v1", "Deployment", "deployments")
STATEFULSET = Resource("apps", "v1", "StatefulSet", "statefulsets")
SERVICE = Resource("", "v1", "Service", "services")
CONFIGMAP = Resource("", "v1", "ConfigMap", "configmaps")
SECRET = Resource("", "v1", "Secret", "secrets")
SERVICEACCOUNT = Resource("", "v1", "ServiceAccount", "serviceaccounts")
POD = Resource("", "v1", "Pod", "pods")
NAMESPACE = Resource("", "v1", "Namespace", "namespaces", namespaced=False)
EVENT = Resource("", "v1", "Event", "events")
ROLE = Resource("rbac.authorization.k8s.io", "v1", "Role", "roles")
ROLEBINDING = Resource("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings")
LEASE = Resource("coordination.k8s.io", "v1", "Lease", "leases")
NETWORKPOLICY = Resource("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies")
PODDISRUPTIONBUDGET = Resource("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets")
PODDISRUPTIONBUDGET_V1BETA1 = Resource("policy", "v1beta1", "PodDisruptionBudget", "poddisruptionbudgets")
"""The same kind as served before Kubernetes 1.21 (and removed in 1.25); identical fields for our use."""
CUSTOMRESOURCEDEFINITION = Resource(
    "apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", namespaced=False
)

BUILTIN_RESOURCES = (
    DEPLOYMENT,
    STATEFULSET,
    SERVICE,
    CONFIGMAP,
    SECRET,
    SERVICEACCOUNT,
    POD,
    NAMESPACE,
    EVENT,
    ROLE,
    ROLEBINDING,
    LEASE,
    NETWORKPOLICY,
    PODDISRUPTIONBUDGET,
    PODDISRUPTIONBUDGET_V1BETA1,
)
"""The built-in kinds an apply can name without registering them first."""
