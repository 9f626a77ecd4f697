"""The gateway's ConfigMap watch against the real kube-apiserver: a changed config reaches the gateway
within 2 s (the kubelet's file refresh can take a minute), an invalid one is not applied, and the Role
the operator gives the gateway allows watching its own ConfigMap and nothing else."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from api.virtualmcpserver import VirtualMCPServer
from api.vmcp_config import VMCPConfig
from controller.reconcilers.settings import ReconcilerSettings
from controller.reconcilers.virtualmcpserver_build import CONFIG_KEY, build_children, build_vmcp_config
from gateway.vmcp.config_feed import ConfigMapFeed
from tests.support.cluster import Cluster
from tests.support.gateway_target import target_for

NAME = "team"
CONFIG_MAP = f"{NAME}-vmcp"


def _config(*members: str) -> dict[str, Any]:
    return {"name": NAME, "backends": [{"name": m, "url": f"http://{m}.ns.svc:8080/mcp"} for m in members]}


async def _put(core: client.CoreV1Api, namespace: str, text: str, create: bool = False) -> None:
    body = {"metadata": {"name": CONFIG_MAP}, "data": {CONFIG_KEY: text}}
    if create:
        await core.create_namespaced_config_map(namespace, body)
    else:
        await core.patch_namespaced_config_map(CONFIG_MAP, namespace, body)


async def test_a_config_change_reaches_the_gateway_within_two_seconds(
    cluster: Cluster, api_client: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    core = client.CoreV1Api(api_client)
    await _put(core, namespace, yaml.safe_dump(_config("a")), create=True)
    running = VMCPConfig.model_validate(_config())
    applied: list[tuple[float, VMCPConfig]] = []
    changed = anyio.Event()

    async def apply(config: VMCPConfig) -> None:
        nonlocal running, changed
        running = config
        applied.append((time.monotonic(), config))
        changed.set()
        changed = anyio.Event()

    target = target_for(cluster, namespace, tmp_path)
    feed = ConfigMapFeed(target, CONFIG_MAP, CONFIG_KEY, lambda: running, apply)
    async with anyio.create_task_group() as tg:
        tg.start_soon(feed.run)
        with anyio.fail_after(10):
            while not applied:
                await changed.wait()
        assert [b.name for b in applied[-1][1].backends] == ["a"]  # the config at start

        await _put(core, namespace, yaml.safe_dump(_config("a", "b")))  # a member joins
        sent = time.monotonic()
        with anyio.fail_after(10):
            while len(applied) < 2:
                await changed.wait()
        assert [b.name for b in applied[-1][1].backends] == ["a", "b"]
        assert applied[-1][0] - sent < 2.0

        await _put(core, namespace, "name: [not a config")  # invalid: logged, not applied
        await _put(core, namespace, yaml.safe_dump(_config("c")))
        with anyio.fail_after(10):
            while len(applied) < 3:
                await changed.wait()
        assert [b.name for b in applied[-1][1].backends] == ["c"]
        tg.cancel_scope.cancel()
    assert len(applied) == 3  # the same config is never applied twice; the invalid one never


async def test_the_gateway_role_allows_watching_only_its_own_config_map(
    cluster: Cluster, api_client: client.ApiClient, namespace: str
) -> None:
    vmcp = VirtualMCPServer.model_validate(
        {
            "apiVersion": "mcp-operator.dev/v1beta1",
            "kind": "VirtualMCPServer",
            "metadata": {"name": NAME, "namespace": namespace, "uid": "u1"},
            "spec": {"groupRef": {"name": "g"}, "incomingAuth": {"type": "anonymous"}},
        }
    )
    settings = ReconcilerSettings()
    owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": "u1"}
    children = build_children(vmcp, owner, settings, build_vmcp_config(vmcp, [], settings))
    rbac = client.RbacAuthorizationV1Api(api_client)
    core = client.CoreV1Api(api_client)
    for child in children:
        child["metadata"].pop("ownerReferences", None)
        if child["kind"] == "Role":
            await rbac.create_namespaced_role(namespace, child)
        elif child["kind"] == "RoleBinding":
            await rbac.create_namespaced_role_binding(namespace, child)
    await _put(core, namespace, yaml.safe_dump(_config("a")), create=True)
    await core.create_namespaced_config_map(namespace, {"metadata": {"name": "other"}, "data": {"x": "y"}})
    account = next(c for c in children if c["kind"] == "RoleBinding")["subjects"][0]["name"]

    as_gateway = client.ApiClient(api_client.configuration)
    as_gateway.set_default_header("Impersonate-User", f"system:serviceaccount:{namespace}:{account}")
    try:
        gateway_core = client.CoreV1Api(as_gateway)
        own = await gateway_core.read_namespaced_config_map(CONFIG_MAP, namespace)
        assert own.data[CONFIG_KEY]
        watched = await gateway_core.list_namespaced_config_map(
            namespace,
            field_selector=f"metadata.name={CONFIG_MAP}",
            watch=True,
            timeout_seconds=1,
            _preload_content=False,
        )
        assert watched.status == 200
        assert f'"name":"{CONFIG_MAP}"' in await watched.text()  # the watch by name delivers the object
        for forbidden in (
            gateway_core.read_namespaced_config_map("other", namespace),
            gateway_core.list_namespaced_config_map(namespace),
        ):
            with pytest.raises(ApiException) as caught:
                await forbidden
            assert caught.value.status == 403
    finally:
        await as_gateway.close()
