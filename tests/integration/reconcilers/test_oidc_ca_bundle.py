"""The inline OIDC ``caBundleRef`` on the real kube-apiserver: a missing ConfigMap blocks the workload
naming the field, the ConfigMap's key is mounted read-only where the rendered config reads it, a change
of the certificates rolls the pods, and the bundle reached through an MCPOIDCConfig behaves the same."""

from __future__ import annotations

from typing import Any

from tests.support.kube import Api
from tests.support.mcpserver import server
from tests.support.operator import Operator
from tests.support.resources import remote_proxy
from tests.support.tls import private_ca_server
from tests.support.waiting import eventually

from .test_mcpoidcconfig import OIDC, PROVIDER, gateway, oidc_config, ref, rendered_oidc

ANNOTATION = "mcp-operator.dev/oidc-ca-bundle-hash"
BUNDLE = {"configMapRef": {"name": "idp-ca", "key": "ca.pem"}}


def ca_map(pem: str) -> dict[str, Any]:
    return {"kind": "ConfigMap", "metadata": {"name": "idp-ca"}, "data": {"ca.pem": pem}}


async def bundle_digest(kube: Api, name: str, other_than: str | None = None) -> str:
    """The CA bundle annotation of Deployment ``name``'s pods, once it is set (and not ``other_than``)."""

    async def check() -> str | None:
        dep = await kube.child("Deployment", name)
        annotations = (dep or {}).get("spec", {}).get("template", {}).get("metadata", {}).get("annotations")
        value = (annotations or {}).get(ANNOTATION)
        return value if value and value != other_than else None

    found: str = await eventually(check, what=f"the CA bundle digest of Deployment {name}")
    return found


def mounted(deployment: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    pod = deployment["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "oidc-ca-bundle")
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "oidc-ca-bundle")
    return volume, mount


async def test_an_inline_ca_bundle_is_required_mounted_and_rolls_the_proxy(
    operator: Operator, kube: Api
) -> None:
    oidc = {"type": "inline", "inline": {**PROVIDER, "audience": "fetch", "caBundleRef": BUNDLE}}
    await kube.create("mcpservers", server("fetch", transport="streamable-http", oidcConfig=oidc))
    cond = await kube.wait_condition("mcpservers", "fetch", "ResolvedRefs", reason="CABundleNotFound")
    assert "spec.oidcConfig.inline.caBundleRef: ConfigMap 'idp-ca' does not exist" in cond["message"], cond
    assert await kube.child("Deployment", "fetch") is None  # never deployed trusting other CAs

    await kube.core.create_namespaced_config_map(kube.ns, ca_map(private_ca_server().ca_pem))
    first = await bundle_digest(kube, "fetch")
    volume, mount = mounted(await kube.wait_child("Deployment", "fetch"))
    assert volume["configMap"]["name"] == "idp-ca"
    assert volume["configMap"]["items"] == [{"key": "ca.pem", "path": "ca.crt"}]
    assert mount["readOnly"] is True and mount["mountPath"] == "/etc/mcp-operator-oidc-ca"
    assert (await rendered_oidc(kube, "MCPServer", "fetch"))[
        "caBundlePath"
    ] == "/etc/mcp-operator-oidc-ca/ca.crt"
    await kube.wait_condition("mcpservers", "fetch", "ResolvedRefs", status="True")

    rotated = private_ca_server("rotated identity provider CA").ca_pem
    await kube.core.patch_namespaced_config_map("idp-ca", kube.ns, ca_map(rotated))
    assert await bundle_digest(kube, "fetch", other_than=first) != first

    # Converged: a reconcile caused by an unrelated edit of the ConfigMap sends no write at all.
    writes, reconciles = await operator.settled(), operator.reconciles("mcpserver")
    await kube.core.patch_namespaced_config_map("idp-ca", kube.ns, {"metadata": {"labels": {"team": "a"}}})

    async def reconciled_again() -> bool:
        return operator.reconciles("mcpserver") > reconciles

    await eventually(reconciled_again, what="a reconcile after the ConfigMap edit")
    assert operator.writes() == writes

    bad = {
        "type": "inline",
        "inline": {
            **PROVIDER,
            "audience": "docs",
            "caBundleRef": {"configMapRef": {"name": "idp-ca", "optional": True}},
        },
    }
    await kube.create("mcpremoteproxies", remote_proxy("docs", oidcConfig=bad))
    refused = await kube.wait_condition("mcpremoteproxies", "docs", "Accepted", status="False")
    assert "spec.oidcConfig.inline.caBundleRef.configMapRef.optional: must not be true" in refused["message"]


async def test_a_ca_bundle_of_an_mcpoidcconfig_blocks_and_reaches_its_workloads(
    operator: Operator, kube: Api
) -> None:
    await kube.create(OIDC, oidc_config("private-idp", caBundleRef=BUNDLE))
    await kube.wait_condition(OIDC, "private-idp", "Accepted", status="True")
    own = await kube.wait_condition(OIDC, "private-idp", "ResolvedRefs", reason="CABundleNotFound")
    assert "spec.inline.caBundleRef: ConfigMap 'idp-ca' does not exist" in own["message"], own
    await kube.create("mcpremoteproxies", remote_proxy("docs", oidcConfigRef=ref("docs", "private-idp")))
    cond = await kube.wait_condition("mcpremoteproxies", "docs", "ResolvedRefs", reason="CABundleNotFound")
    assert (
        "MCPOIDCConfig 'private-idp' spec.inline.caBundleRef: ConfigMap 'idp-ca' does not exist"
        in cond["message"]
    ), cond
    assert await kube.child("Deployment", "docs") is None
    await kube.create("mcpgroups", {"kind": "MCPGroup", "metadata": {"name": "team"}, "spec": {}})
    await kube.create("virtualmcpservers", gateway("gw", oidcConfigRef=ref("gw", "private-idp")))
    cond = await kube.wait_condition("virtualmcpservers", "gw", "ResolvedRefs", status="False")
    assert "spec.inline.caBundleRef: ConfigMap 'idp-ca' does not exist" in cond["message"], cond
    assert await kube.child("Deployment", "gw") is None

    await kube.core.create_namespaced_config_map(kube.ns, ca_map(private_ca_server().ca_pem))
    await bundle_digest(kube, "docs")
    await kube.wait_condition(OIDC, "private-idp", "ResolvedRefs", status="True")
    gateway_volume, _ = mounted(await kube.wait_child("Deployment", "gw"))
    assert gateway_volume["configMap"]["items"] == [{"key": "ca.pem", "path": "ca.crt"}]
    incoming = await rendered_oidc(kube, "VirtualMCPServer", "gw")
    assert incoming["oidc"]["caBundlePath"] == "/etc/mcp-operator-oidc-ca/ca.crt"
    volume, _ = mounted(await kube.wait_child("Deployment", "docs"))
    assert volume["configMap"]["name"] == "idp-ca"
    assert (await rendered_oidc(kube, "MCPRemoteProxy", "docs"))[
        "caBundlePath"
    ] == "/etc/mcp-operator-oidc-ca/ca.crt"
