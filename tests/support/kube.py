"""The test's own view of the API server: the MCP custom resources and their children as plain dicts."""

from __future__ import annotations

import base64
from typing import Any

from kubernetes_asyncio import client

from tests.support.waiting import eventually

GROUP, VERSION = "mcp-operator.dev", "v1beta1"
CONFIG_HASH = "mcp-operator.dev/config-hash"
"""The pod-template annotation whose change rolls a workload."""


class Api:
    """Thin test helpers over the kubernetes-asyncio client (the test's own client, not the operator's)."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api = api
        self.ns = namespace
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.rbac = client.RbacAuthorizationV1Api(api)
        self.networking = client.NetworkingV1Api(api)

    async def create(self, plural: str, body: dict[str, Any]) -> dict[str, Any]:
        body = {"apiVersion": f"{GROUP}/{VERSION}", **body}
        body.setdefault("metadata", {})["namespace"] = self.ns
        result: dict[str, Any] = await self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.ns, plural, body
        )
        return result

    async def create_secret(self, name: str, data: dict[str, str]) -> None:
        """A Secret in the test namespace holding ``data`` (plain text, stored base64-encoded)."""
        encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
        await self.core.create_namespaced_secret(self.ns, {"metadata": {"name": name}, "data": encoded})

    async def get(self, plural: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.ns, plural, name
        )
        return result

    async def patch(self, plural: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.ns, plural, name, patch, _content_type="application/merge-patch+json"
        )
        return result

    async def delete(self, plural: str, name: str) -> None:
        await self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.ns, plural, name)

    async def child(self, kind: str, name: str) -> dict[str, Any] | None:
        """A child object as a plain dict (camelCase, as the API returns it), or None when absent."""
        readers = {
            "Deployment": self.apps.read_namespaced_deployment,
            "StatefulSet": self.apps.read_namespaced_stateful_set,
            "Service": self.core.read_namespaced_service,
            "ConfigMap": self.core.read_namespaced_config_map,
            "ServiceAccount": self.core.read_namespaced_service_account,
            "Role": self.rbac.read_namespaced_role,
            "RoleBinding": self.rbac.read_namespaced_role_binding,
            "NetworkPolicy": self.networking.read_namespaced_network_policy,
        }
        try:
            obj = await readers[kind](name, self.ns)
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        result: dict[str, Any] = self.api.sanitize_for_serialization(obj)
        return result

    async def disruption_budget(self, name: str) -> dict[str, Any] | None:
        """The PodDisruptionBudget ``name`` in the version the API server serves (v1, or v1beta1 before
        Kubernetes 1.21), or None when absent."""
        for version in ("v1", "v1beta1"):
            try:
                found: dict[str, Any] = await self.custom.get_namespaced_custom_object(
                    "policy", version, self.ns, "poddisruptionbudgets", name
                )
            except client.ApiException as exc:
                if exc.status == 404:
                    continue
                raise
            return found
        return None

    async def wait_child(self, kind: str, name: str) -> dict[str, Any]:
        """A child once it exists (children are applied one after another, not at once)."""
        found: dict[str, Any] = await eventually(lambda: self.child(kind, name), what=f"{kind} {name}")
        return found

    async def wait_rolled(self, name: str, digest: str) -> dict[str, Any]:
        """The Deployment ``name`` once its pod template carries a config hash other than ``digest``."""

        async def check() -> dict[str, Any] | None:
            dep = await self.child("Deployment", name)
            annotations = (
                (dep or {}).get("spec", {}).get("template", {}).get("metadata", {}).get("annotations")
            )
            return dep if (annotations or {}).get(CONFIG_HASH) not in (None, digest) else None

        found: dict[str, Any] = await eventually(
            check, what=f"Deployment {name} rolled off config hash {digest}"
        )
        return found

    async def wait_condition(self, plural: str, name: str, type_: str, **fields: str) -> dict[str, Any]:
        """The condition ``type_`` of the custom resource ``name`` once it has ``fields`` (``reason=``...)."""

        async def check() -> dict[str, Any] | None:
            cond = condition(await self.get(plural, name), type_) or {}
            return cond if all(cond.get(k) == v for k, v in fields.items()) else None

        found: dict[str, Any] = await eventually(check, what=f"{type_} {fields} on {plural}/{name}")
        return found

    async def delete_child(self, kind: str, name: str) -> None:
        deleters = {
            "Deployment": self.apps.delete_namespaced_deployment,
            "StatefulSet": self.apps.delete_namespaced_stateful_set,
            "Service": self.core.delete_namespaced_service,
            "ConfigMap": self.core.delete_namespaced_config_map,
            "ServiceAccount": self.core.delete_namespaced_service_account,
            "Role": self.rbac.delete_namespaced_role,
            "RoleBinding": self.rbac.delete_namespaced_role_binding,
        }
        await deleters[kind](name, self.ns)

    async def mark_ready(self, kind: str, name: str, ready: int = 1) -> None:
        """Set a Deployment / StatefulSet status as its controller would when ``ready`` pods run."""
        obj = await self.wait_child(kind, name)  # children are applied concurrently, not in an order
        generation = obj["metadata"].get("generation", 1)
        replicas = obj["spec"].get("replicas", 1)
        status: dict[str, Any] = {
            "observedGeneration": generation,
            "replicas": replicas,
            "readyReplicas": ready,
            "updatedReplicas": replicas,
        }
        if kind == "Deployment":
            status["availableReplicas"] = ready
            status["conditions"] = [
                {
                    "type": "Available",
                    "status": "True" if ready else "False",
                    "reason": "MinimumReplicasAvailable",
                    "message": "set by the test as the Deployment controller would",
                    "lastUpdateTime": "2026-01-01T00:00:00Z",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
            ]
        else:
            status["currentReplicas"] = replicas
        patch = (
            self.apps.patch_namespaced_deployment_status
            if kind == "Deployment"
            else self.apps.patch_namespaced_stateful_set_status
        )
        await patch(name, self.ns, {"status": status}, _content_type="application/merge-patch+json")


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return dict(c)
    return None
