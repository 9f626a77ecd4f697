"""MCPOIDCConfig on the real kube-apiserver: ``oidcConfigRef`` on the three workload kinds renders what the
equivalent inline ``oidcConfig`` renders, a change rolls the workloads and updates their hash, a missing
or invalid config fails closed (nothing deployed), and deletion waits while a workload refers to it."""

from __future__ import annotations

import json
from typing import Any

import yaml

from tests.support.cluster import Cluster
from tests.support.kube import Api, condition
from tests.support.mcpserver import server
from tests.support.operator import Operator
from tests.support.resources import remote_proxy
from tests.support.waiting import eventually

OIDC = "mcpoidcconfigs"
HASH = "mcp-operator.dev/config-hash"
ISSUER = "https://login.example.com/realms/staff"
PROVIDER = {"issuer": ISSUER, "jwksUrl": f"{ISSUER}/certs"}


def oidc_config(name: str, **inline: Any) -> dict[str, Any]:
    return {
        "kind": "MCPOIDCConfig",
        "metadata": {"name": name},
        "spec": {"type": "inline", "inline": {**PROVIDER, **inline}},
    }


def ref(audience: str, name: str = "idp") -> dict[str, Any]:
    return {"name": name, "audience": audience, "resourceUrl": f"https://mcp.example.com/{audience}"}


def inline(audience: str) -> dict[str, Any]:
    return {
        "inline": {**PROVIDER, "audience": audience},
        "resourceUrl": f"https://mcp.example.com/{audience}",
    }


def gateway(name: str, **incoming: Any) -> dict[str, Any]:
    return {
        "kind": "VirtualMCPServer",
        "metadata": {"name": name},
        "spec": {"groupRef": {"name": "team"}, "incomingAuth": {"type": "oidc", **incoming}},
    }


async def rendered_oidc(kube: Api, kind: str, name: str) -> dict[str, Any]:
    """The inbound auth section of a workload's rendered configuration, once rendered."""

    async def check() -> dict[str, Any] | None:
        if kind == "VirtualMCPServer":
            cm = await kube.child("ConfigMap", f"{name}-vmcp")
            return yaml.safe_load(cm["data"]["vmcp.yaml"])["incomingAuth"] if cm else None
        cm = await kube.child("ConfigMap", f"{name}-proxy")
        return json.loads(cm["data"]["proxy.json"]).get("oidc") if cm else None

    found: dict[str, Any] = await eventually(check, what=f"the rendered OIDC settings of {kind} {name}")
    return found


async def status_hash(kube: Api, plural: str, name: str, wanted: str) -> None:
    async def check() -> bool:
        return bool(((await kube.get(plural, name)).get("status") or {}).get("oidcConfigHash") == wanted)

    await eventually(check, what=f"{plural}/{name} status.oidcConfigHash {wanted}")


async def config_hash(kube: Api, name: str, other_than: str | None = None) -> str:
    async def check() -> str | None:
        value = ((await kube.get(OIDC, name)).get("status") or {}).get("configHash")
        return value if value and value != other_than else None

    found: str = await eventually(check, what=f"configHash of MCPOIDCConfig {name}")
    return found


async def test_a_reference_renders_what_the_inline_config_renders_for_every_workload_kind(
    operator: Operator, kube: Api, mcp_crds: Cluster
) -> None:
    await kube.create("mcpgroups", {"kind": "MCPGroup", "metadata": {"name": "team"}, "spec": {}})
    await kube.create(OIDC, oidc_config("idp"))
    http = {"transport": "streamable-http"}
    pairs = [
        (
            "MCPServer",
            "mcpservers",
            server("s-ref", **http, oidcConfigRef=ref("s")),
            server("s-inl", **http, oidcConfig=inline("s")),
        ),
        (
            "MCPRemoteProxy",
            "mcpremoteproxies",
            remote_proxy("r-ref", oidcConfigRef=ref("r")),
            remote_proxy("r-inl", oidcConfig=inline("r")),
        ),
        (
            "VirtualMCPServer",
            "virtualmcpservers",
            gateway("g-ref", oidcConfigRef=ref("g")),
            gateway("g-inl", oidcConfig=inline("g")),
        ),
    ]
    for _, plural, by_ref, by_inline in pairs:
        await kube.create(plural, by_ref)
        await kube.create(plural, by_inline)
    configured = await config_hash(kube, "idp")
    for kind, plural, by_ref, by_inline in pairs:
        got = await rendered_oidc(kube, kind, by_ref["metadata"]["name"])
        assert got == await rendered_oidc(kube, kind, by_inline["metadata"]["name"]), kind
        oidc = got["oidc"] if kind == "VirtualMCPServer" else got
        assert oidc["issuer"] == ISSUER and oidc["jwksUrl"] == f"{ISSUER}/certs", got
        await status_hash(kube, plural, by_ref["metadata"]["name"], configured)

    async def referenced() -> dict[str, Any] | None:
        status = (await kube.get(OIDC, "idp")).get("status") or {}
        return status if len(status.get("referencingWorkloads") or []) == 3 else None

    status = await eventually(referenced, what="referencingWorkloads listing the three workloads")
    # A list-map: server-side apply keeps the position of items it already had.
    assert sorted(status["referencingWorkloads"], key=lambda r: (r["kind"], r["name"])) == [
        {"kind": "MCPRemoteProxy", "name": "r-ref"},
        {"kind": "MCPServer", "name": "s-ref"},
        {"kind": "VirtualMCPServer", "name": "g-ref"},
    ]
    assert status["observedGeneration"] == 1
    table = mcp_crds.kubectl("get", "mcpoidc", "idp", "-n", kube.ns).stdout.splitlines()
    assert table[0].split()[:3] == ["NAME", "SOURCE", "VALID"] and table[1].split()[1:3] == ["inline", "True"]


async def test_a_change_rolls_the_workloads_and_updates_their_hash(operator: Operator, kube: Api) -> None:
    await kube.create("mcpgroups", {"kind": "MCPGroup", "metadata": {"name": "team"}, "spec": {}})
    await kube.create(OIDC, oidc_config("idp"))
    await kube.create("mcpservers", server("fetch", transport="streamable-http", oidcConfigRef=ref("fetch")))
    await kube.create("virtualmcpservers", gateway("gw", oidcConfigRef=ref("gw")))
    first = await config_hash(kube, "idp")
    digests = {}
    for name in ("fetch", "gw"):
        dep = await kube.wait_child("Deployment", name)
        digests[name] = dep["spec"]["template"]["metadata"]["annotations"][HASH]
    await status_hash(kube, "mcpservers", "fetch", first)

    moved = "https://login.example.com/realms/partners"
    await kube.patch(OIDC, "idp", {"spec": {"inline": {"issuer": moved, "jwksUrl": f"{moved}/certs"}}})
    second = await config_hash(kube, "idp", other_than=first)
    for name in ("fetch", "gw"):
        await kube.wait_rolled(name, digests[name])
    assert (await rendered_oidc(kube, "MCPServer", "fetch"))["issuer"] == moved
    assert (await rendered_oidc(kube, "VirtualMCPServer", "gw"))["oidc"]["issuer"] == moved
    await status_hash(kube, "mcpservers", "fetch", second)
    await status_hash(kube, "virtualmcpservers", "gw", second)


async def nothing_deployed(kube: Api, names: list[str]) -> None:
    for name in names:
        for kind, child in (("Deployment", name), ("Service", name), ("ConfigMap", f"{name}-proxy")):
            assert await kube.child(kind, child) is None, (kind, child)
        assert await kube.child("ConfigMap", f"{name}-vmcp") is None, name


async def test_a_missing_or_invalid_config_fails_closed(operator: Operator, kube: Api) -> None:
    await kube.create("mcpgroups", {"kind": "MCPGroup", "metadata": {"name": "team"}, "spec": {}})
    workloads = [
        ("mcpservers", server("fetch", transport="streamable-http", oidcConfigRef=ref("fetch", "later"))),
        ("mcpremoteproxies", remote_proxy("docs", oidcConfigRef=ref("docs", "later"))),
        ("virtualmcpservers", gateway("gw", oidcConfigRef=ref("gw", "later"))),
    ]
    for plural, body in workloads:
        await kube.create(plural, body)
    names = [body["metadata"]["name"] for _, body in workloads]
    for plural, name in zip([p for p, _ in workloads], names, strict=True):
        cond = await kube.wait_condition(plural, name, "ResolvedRefs", reason="OIDCConfigNotFound")
        assert "MCPOIDCConfig 'later' does not exist" in cond["message"], cond
        assert (condition(await kube.get(plural, name), "Ready") or {}).get("status") == "False"
    await nothing_deployed(kube, names)

    # A field refused by the rules: the config is invalid, and still nothing serves without auth.
    introspected = {"introspectionUrl": "https://kubernetes.default.svc/introspect"}
    await kube.create(
        OIDC,
        {
            "kind": "MCPOIDCConfig",
            "metadata": {"name": "later"},
            "spec": {"type": "kubernetesServiceAccount", "kubernetesServiceAccount": introspected},
        },
    )
    refused = await kube.wait_condition(OIDC, "later", "Accepted", status="False")
    assert "spec.kubernetesServiceAccount.introspectionUrl: is not supported" in refused["message"], refused
    for plural, name in zip([p for p, _ in workloads], names, strict=True):
        cond = await kube.wait_condition(plural, name, "ResolvedRefs", reason="OIDCConfigInvalid")
        assert "MCPOIDCConfig 'later' is invalid" in cond["message"], cond
    await nothing_deployed(kube, names)

    await kube.patch(
        OIDC, "later", {"spec": {"type": "inline", "kubernetesServiceAccount": None, "inline": PROVIDER}}
    )
    for name in names:
        await kube.wait_child("Deployment", name)
    assert (await rendered_oidc(kube, "MCPServer", "fetch"))["audience"] == "fetch"


async def test_deletion_waits_while_a_workload_refers_to_it(operator: Operator, kube: Api) -> None:
    await kube.create(OIDC, oidc_config("idp"))
    await kube.create("mcpservers", server("fetch", transport="streamable-http", oidcConfigRef=ref("fetch")))
    await kube.wait_condition(OIDC, "idp", "InUse", status="True")
    await kube.delete(OIDC, "idp")
    blocked = await kube.wait_condition(OIDC, "idp", "DeletionBlocked", status="True")
    assert "MCPServer/fetch" in blocked["message"], blocked
    await kube.delete("mcpservers", "fetch")

    async def gone() -> bool:
        listed = await kube.custom.list_namespaced_custom_object("mcp-operator.dev", "v1beta1", kube.ns, OIDC)
        return not listed["items"]

    await eventually(gone, what="the MCPOIDCConfig deleted once nothing refers to it")


async def test_a_missing_client_secret_blocks_the_workload_as_in_the_inline_form(
    operator: Operator, kube: Api
) -> None:
    client = {"clientId": "mcp", "clientSecretRef": {"name": "idp-client", "key": "secret"}}
    await kube.create(OIDC, oidc_config("idp", **client))
    await kube.create("mcpservers", server("fetch", transport="streamable-http", oidcConfigRef=ref("fetch")))
    cond = await kube.wait_condition("mcpservers", "fetch", "ResolvedRefs", reason="SecretNotFound")
    assert (
        "MCPOIDCConfig 'idp' spec.inline.clientSecretRef: Secret 'idp-client' does not exist"
        in cond["message"]
    )
    own = await kube.wait_condition(OIDC, "idp", "ResolvedRefs", reason="SecretNotFound")
    assert "Secret 'idp-client'" in own["message"], own
    assert await kube.child("Deployment", "fetch") is None

    await kube.create_secret("idp-client", {"secret": "s3cret"})
    await kube.wait_child("Deployment", "fetch")
    await kube.wait_condition(OIDC, "idp", "ResolvedRefs", status="True")
    assert "s3cret" not in json.dumps(await kube.child("ConfigMap", "fetch-proxy"))


async def test_the_cluster_service_account_tokens_as_toolhive_writes_them(
    operator: Operator, kube: Api
) -> None:
    await kube.create(
        OIDC,
        {
            "kind": "MCPOIDCConfig",
            "metadata": {"name": "k8s-sa-idp"},
            "spec": {"type": "kubernetesServiceAccount", "kubernetesServiceAccount": {}},
        },
    )
    await kube.wait_condition(OIDC, "k8s-sa-idp", "Accepted", status="True")
    spec = {"transport": "streamable-http", "oidcConfigRef": ref("fetch", "k8s-sa-idp")}
    await kube.create("mcpservers", server("fetch", **spec))
    oidc = await rendered_oidc(kube, "MCPServer", "fetch")
    assert (oidc["issuer"], oidc["audience"]) == ("https://kubernetes.default.svc", "fetch")
    assert oidc["caBundlePath"] == "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
    assert oidc["jwksAuthTokenPath"] == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    assert "subject" not in oidc  # any service account's token for this audience, as ToolHive
    deployment = await kube.wait_child("Deployment", "fetch")
    # not a stdio server: the token is mounted for the JWKS requests only
    assert deployment["spec"]["template"]["spec"]["automountServiceAccountToken"] is True


async def test_toolhives_jwks_token_file_reaches_the_proxy_and_a_relative_one_is_refused(
    operator: Operator, kube: Api
) -> None:
    token = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    flags = {"jwksAuthTokenPath": token, "protectedResourceAllowPrivateIP": True}
    await kube.create(OIDC, oidc_config("in-cluster-idp", **flags))
    await kube.wait_condition(OIDC, "in-cluster-idp", "Accepted", status="True")
    await kube.create(
        "mcpservers",
        server("fetch", transport="streamable-http", oidcConfigRef=ref("fetch", "in-cluster-idp")),
    )
    oidc = await rendered_oidc(kube, "MCPServer", "fetch")
    assert oidc["jwksAuthTokenPath"] == token and "caBundlePath" not in oidc
    deployment = await kube.wait_child("Deployment", "fetch")
    assert deployment["spec"]["template"]["spec"]["automountServiceAccountToken"] is True  # the file sent

    bad = {"type": "inline", "inline": {**PROVIDER, "audience": "docs", "jwksAuthTokenPath": "token"}}
    await kube.create("mcpremoteproxies", remote_proxy("docs", oidcConfig=bad))
    refused = await kube.wait_condition("mcpremoteproxies", "docs", "Accepted", status="False")
    assert "spec.oidcConfig.inline.jwksAuthTokenPath: 'token' is not an absolute path" in refused["message"]
    assert await kube.child("Deployment", "docs") is None
