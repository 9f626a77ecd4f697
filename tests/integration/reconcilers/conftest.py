"""Fixtures for the MCP reconcilers against the real kube-apiserver: CRDs, a running operator, helpers.

No kubelet or workload controllers run here, so pods never start. Tests that need a Ready MCPServer set
the Deployment / StatefulSet status themselves, the way the Deployment and StatefulSet controllers would.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client

from controller.core import Manager, ManagerOptions
from controller.reconcilers import register
from controller.reconcilers.settings import ReconcilerSettings
from tests.conftest import ROOT, Cluster

GROUP, VERSION = "mcp-operator.dev", "v1alpha1"
SETTINGS = ReconcilerSettings(proxy_image="example.test/mcp-operator:test")


@pytest.fixture(scope="session")
def mcp_crds(cluster: Cluster) -> Cluster:
    """The project's generated CRDs, installed and Established."""
    crds = ROOT / "manifests" / "crds"
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crds))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(crds))
    return cluster


class Operator:
    """The operator's manager running in this test's event loop, watching one namespace."""

    def __init__(self, manager: Manager, namespace: str) -> None:
        self.manager = manager
        self.namespace = namespace

    async def settled(self, quiet: float = 2.0, within: float = 60.0) -> float:
        """The write count once no write has been sent for ``quiet`` seconds (other objects settle first)."""
        deadline = time.monotonic() + within
        count = self.writes()
        while time.monotonic() < deadline:
            await asyncio.sleep(quiet)
            now = self.writes()
            if now == count:
                return count
            count = now
        raise AssertionError(f"the operator kept writing for {within} s (writes: {count})")

    def writes(self) -> float:
        """Write requests (POST/PUT/PATCH/DELETE) the operator has sent so far."""
        total = 0.0
        for metric in self.manager.metrics.registry.collect():
            if metric.name == "rest_client_requests":
                for sample in metric.samples:
                    if sample.name.endswith("_total") and sample.labels.get("method") in (
                        "POST",
                        "PUT",
                        "PATCH",
                        "DELETE",
                    ):
                        total += sample.value
        return total

    def reconciles(self, controller: str = "mcpserver") -> float:
        total = 0.0
        for metric in self.manager.metrics.registry.collect():
            if metric.name == "controller_runtime_reconcile":
                for sample in metric.samples:
                    if sample.name.endswith("_total") and sample.labels.get("controller") == controller:
                        total += sample.value
        return total


@contextlib.asynccontextmanager
async def run_operator(
    kubeconfig: Path, namespace: str, *, inactivity_timeout: float | None = None, **options: Any
) -> AsyncIterator[Operator]:
    """The operator's manager in this test's event loop; ``inactivity_timeout`` overrides the informers'
    (fault tests lower it to see a silent watch within seconds)."""
    opts = ManagerOptions(
        kubeconfig=str(kubeconfig),
        namespaces=[namespace],
        metrics_bind_address="0",
        health_probe_bind_address="0",
        **options,
    )
    manager = Manager(opts)
    if inactivity_timeout is not None:
        manager.cache.settings.inactivity_timeout = inactivity_timeout
    register(manager, SETTINGS)
    task = asyncio.create_task(manager.run(handle_signals=False))
    try:
        await asyncio.wait_for(manager.leading.wait(), 60)
        yield Operator(manager, namespace)
    finally:
        manager.stop()
        assert await asyncio.wait_for(task, 90) == 0


@pytest.fixture
async def operator(mcp_crds: Cluster, namespace: str) -> AsyncIterator[Operator]:
    async with run_operator(mcp_crds.kubeconfig, namespace) as op:
        yield op


class Api:
    """Thin test helpers over the kubernetes-asyncio client (the test's own client, not the operator's)."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api = api
        self.ns = namespace
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.rbac = client.RbacAuthorizationV1Api(api)

    async def create(self, plural: str, body: dict[str, Any]) -> dict[str, Any]:
        body = {"apiVersion": f"{GROUP}/{VERSION}", **body}
        body.setdefault("metadata", {})["namespace"] = self.ns
        result: dict[str, Any] = await self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.ns, plural, body
        )
        return result

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
        }
        try:
            obj = await readers[kind](name, self.ns)
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        result: dict[str, Any] = self.api.sanitize_for_serialization(obj)
        return result

    async def wait_child(self, kind: str, name: str) -> dict[str, Any]:
        """A child once it exists (children are applied one after another, not at once)."""
        found: dict[str, Any] = await eventually(lambda: self.child(kind, name), what=f"{kind} {name}")
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


@pytest.fixture
def kube(api_client: client.ApiClient, namespace: str) -> Api:
    return Api(api_client, namespace)


async def eventually(
    check: Callable[[], Awaitable[Any]], within: float = 30.0, what: str = "condition"
) -> Any:
    """Poll ``check`` until it returns a truthy value; fail with ``what`` after ``within`` seconds."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = await check()
        except (AssertionError, KeyError, TypeError) as exc:
            last = exc
        else:
            if last:
                return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {within} s waiting for {what}; last: {last!r}")


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return dict(c)
    return None
