"""The local control plane itself: CRDs become Established, data survives a restart, no rebuilds."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest
from kubernetes_asyncio import client

from tests.support.cluster import Cluster, cluster_env

TEST_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.foundation.mcp-operator.dev"},
    "spec": {
        "group": "foundation.mcp-operator.dev",
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {"size": {"type": "integer", "minimum": 1}},
                            }
                        },
                    }
                },
            }
        ],
    },
}


async def test_crd_becomes_established_and_validates(api_client: client.ApiClient, namespace: str) -> None:
    ext = client.ApiextensionsV1Api(api_client)
    try:
        await ext.create_custom_resource_definition(TEST_CRD)
    except client.ApiException as exc:
        assert exc.status == 409, exc  # left by an earlier run against the same cluster
    deadline = time.monotonic() + 30
    established = False
    while time.monotonic() < deadline and not established:
        crd = await ext.read_custom_resource_definition(TEST_CRD["metadata"]["name"])  # type: ignore[index]
        established = any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or [])
        await asyncio.sleep(0.2)
    assert established, "the CRD never became Established"

    custom = client.CustomObjectsApi(api_client)
    body = {
        "apiVersion": "foundation.mcp-operator.dev/v1",
        "kind": "Widget",
        "metadata": {"name": "w1"},
        "spec": {"size": 3},
    }
    await custom.create_namespaced_custom_object(
        "foundation.mcp-operator.dev", "v1", namespace, "widgets", body
    )
    bad = {**body, "metadata": {"name": "w2"}, "spec": {"size": 0}}
    try:
        await custom.create_namespaced_custom_object(
            "foundation.mcp-operator.dev", "v1", namespace, "widgets", bad
        )
    except client.ApiException as exc:
        assert exc.status == 422
        assert "spec.size" in exc.body
    else:
        raise AssertionError("the API server accepted a Widget violating its schema")


def test_kubectl_reaches_the_cluster(cluster: Cluster) -> None:
    out = cluster.kubectl("get", "--raw", "/readyz").stdout
    assert out.strip() == "ok"
    assert "v1.20.2" in cluster.kubectl("version", "-o", "json", check=False).stdout


def test_restart_keeps_data_and_reuses_cached_binaries(cluster: Cluster) -> None:
    """A second instance: create data, stop by pid, start again (seconds, no rebuild), data is there."""
    if cluster.instance is None:
        pytest.skip("stops and starts a local control plane; MCP_OPERATOR_TEST_KUBECONFIG is external")
    instance = f"restart-{uuid.uuid4().hex[:6]}"
    other = Cluster(kubeconfig=Path(), instance=instance, env=cluster_env(instance))
    try:
        started = time.monotonic()
        up = other.hack("up")
        first_start = time.monotonic() - started
        assert "building" not in up.stderr, "the cached binaries were rebuilt"
        other.kubeconfig = Path(up.stdout.strip().splitlines()[-1].split("=", 1)[1])
        other.kubectl("create", "configmap", "survivor", "--from-literal=k=v", "-n", "default")
        assert other.hack("status").returncode == 0

        other.hack("down")
        assert other.hack("status", check=False).returncode == 1, "processes still running after down"

        started = time.monotonic()
        other.hack("up")
        restart = time.monotonic() - started
        value = other.kubectl(
            "get", "configmap", "survivor", "-n", "default", "-o", "jsonpath={.data.k}"
        ).stdout
        assert value == "v", "etcd data was lost across a restart"
        # Starting from cached binaries takes seconds (reported; not a timing assertion on a shared machine).
        print(f"control-plane start: first {first_start:.1f} s, restart {restart:.1f} s")
    finally:
        other.hack("down", "--wipe", check=False)
    assert other.hack("status", check=False).returncode == 1
