"""ToolHive's VirtualMCPServer fields of the gateway pod and config (``imagePullSecrets``,
``passthroughHeaders``, ``config.audit``) on the real kube-apiserver: accepted as ToolHive writes them and
rendered into the gateway's children; bad values refused naming the field."""

from __future__ import annotations

from typing import Any

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


async def test_audit_settings_are_rendered_and_unmapped_ones_refused(operator: Operator, kube: Api) -> None:
    await kube.create("mcpgroups", group("audited"))
    audit = {"enabled": True, "component": "vmcp-team", "includeRequestData": True, "maxDataSize": 2048}
    await kube.create(PLURAL, vmcp("audited", "audited", config={"audit": audit}))

    async def rendered() -> dict[str, Any] | None:
        config = await config_of(kube, "audited")
        return (config or {}).get("audit")

    expected = {"enabled": True, "includeArguments": True, "maxDataSize": 2048, "component": "vmcp-team"}
    assert await eventually(rendered, what="the audit settings in the gateway config") == expected

    unmapped = {"includeResponseData": True, "logFile": "/var/log/vmcp-audit.log"}
    await kube.create(PLURAL, vmcp("unmapped", "audited", config={"audit": unmapped}))
    cond = await kube.wait_condition(PLURAL, "unmapped", "Accepted", status="False")
    for field in ("spec.config.audit.includeResponseData", "spec.config.audit.logFile"):
        assert field in cond["message"], cond
    assert await kube.child("ConfigMap", "unmapped-vmcp") is None

    with pytest.raises(client.ApiException) as info:
        await kube.create(PLURAL, vmcp("negative", "audited", config={"audit": {"maxDataSize": -1}}))
    assert info.value.status == 422 and "spec.config.audit.maxDataSize" in info.value.body
