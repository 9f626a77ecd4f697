"""ToolHive's VirtualMCPServer fields of the gateway pod and config (``imagePullSecrets``,
``passthroughHeaders``) on the real kube-apiserver: accepted as ToolHive writes them and rendered into the
gateway's children; bad values refused naming the field."""

from __future__ import annotations

import pytest
from kubernetes_asyncio import client

from tests.integration.reconcilers.test_virtualmcpserver import PLURAL, config_of, group, vmcp
from tests.support.kube import Api
from tests.support.operator import Operator
from tests.support.waiting import eventually


async def test_image_pull_secrets_reach_the_gateway_pods_and_its_service_account(
    operator: Operator, kube: Api
) -> None:
    """The pods get the union with ``podTemplateSpec``'s secrets; the account only the field's own."""
    await kube.create("mcpgroups", group("private"))
    template = {"spec": {"imagePullSecrets": [{"name": "team-mirror"}]}}
    spec = {"imagePullSecrets": [{"name": "registry"}], "podTemplateSpec": template}
    await kube.create(PLURAL, vmcp("pulled", "private", **spec))
    deployment = await kube.wait_child("Deployment", "pulled")
    secrets = deployment["spec"]["template"]["spec"]["imagePullSecrets"]
    assert sorted(s["name"] for s in secrets) == ["registry", "team-mirror"]
    account = await kube.wait_child("ServiceAccount", "pulled-vmcp")
    assert account["imagePullSecrets"] == [{"name": "registry"}]

    with pytest.raises(client.ApiException) as info:
        await kube.create(PLURAL, vmcp("bad-pull", "private", imagePullSecrets=[{"name": "Not_A_Name"}]))
    assert info.value.status == 422 and "spec.imagePullSecrets" in info.value.body
    assert "Not_A_Name" in info.value.body


async def test_passthrough_headers_are_rendered_and_a_credential_header_is_refused(
    operator: Operator, kube: Api
) -> None:
    await kube.create("mcpgroups", group("tenants"))
    spec = {"passthroughHeaders": ["X-Tenant-Id"], "config": {"passthroughHeaders": ["X-Api-Key"]}}
    await kube.create(PLURAL, vmcp("forwarding", "tenants", **spec))

    async def rendered() -> list[str] | None:
        config = await config_of(kube, "forwarding")
        return (config or {}).get("passthroughHeaders")

    assert await eventually(rendered, what="passthroughHeaders in the gateway config") == ["X-Tenant-Id"]

    bad = {"config": {"passthroughHeaders": ["X-Tenant-Id", "Authorization"]}}
    await kube.create(PLURAL, vmcp("leaky", "tenants", **bad))
    cond = await kube.wait_condition(PLURAL, "leaky", "Accepted", status="False")
    assert "spec.config.passthroughHeaders[1]" in cond["message"] and "Authorization" in cond["message"], cond
    assert await kube.child("ConfigMap", "leaky-vmcp") is None
