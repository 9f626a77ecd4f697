"""ToolHive's VirtualMCPServer fields of the gateway pod and config on the real kube-apiserver: accepted as
ToolHive writes them and rendered into the gateway's children; bad values refused naming the field."""

from __future__ import annotations

import pytest
from kubernetes_asyncio import client

from tests.integration.reconcilers.test_virtualmcpserver import PLURAL, group, vmcp
from tests.support.kube import Api
from tests.support.operator import Operator


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
