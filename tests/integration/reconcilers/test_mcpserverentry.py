"""MCPServerEntry on the real kube-apiserver: an entry joins its group, the group's VirtualMCPServer routes
to its remote URL directly (with its outbound auth, headers and SSRF setting), its status says whether it
is valid and in use, and an entry that is invalid or whose references are missing is never routed to."""

from __future__ import annotations

from typing import Any

import yaml

from tests.integration.reconcilers.test_virtualmcpserver import vmcp
from tests.support.cluster import Cluster
from tests.support.kube import Api, condition
from tests.support.mcpserver import server
from tests.support.operator import Operator, run_operator
from tests.support.resources import bearer_token
from tests.support.tls import private_ca_server
from tests.support.waiting import eventually

ENTRIES = "mcpserverentries"
GATEWAYS = "virtualmcpservers"


def entry(name: str, url: str, **spec: Any) -> dict[str, Any]:
    return {
        "kind": "MCPServerEntry",
        "metadata": {"name": name},
        "spec": {"remoteUrl": url, "transport": "streamable-http", "groupRef": {"name": "remote"}, **spec},
    }


def gateway(name: str) -> dict[str, Any]:
    return vmcp(name, "remote")


async def backends(kube: Api, name: str, wanted: set[str]) -> dict[str, dict[str, Any]]:
    """The gateway's rendered backends by name, once they are exactly ``wanted``."""

    async def check() -> dict[str, dict[str, Any]] | None:
        cm = await kube.child("ConfigMap", f"{name}-vmcp")
        if cm is None:
            return None
        found = {b["name"]: b for b in yaml.safe_load(cm["data"]["vmcp.yaml"]).get("backends", [])}
        return found if set(found) == wanted else None

    result: dict[str, dict[str, Any]] = await eventually(check, what=f"backends {wanted} of {name}")
    return result


async def phase(kube: Api, name: str, wanted: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        obj = await kube.get(ENTRIES, name)
        return obj if (obj.get("status") or {}).get("phase") == wanted else None

    result: dict[str, Any] = await eventually(check, what=f"MCPServerEntry {name} phase {wanted}")
    return result


async def test_an_entry_joins_its_group_and_the_gateway_routes_to_it_directly(
    operator: Operator, kube: Api, mcp_crds: Cluster
) -> None:
    await kube.create("mcpgroups", {"kind": "MCPGroup", "metadata": {"name": "remote"}, "spec": {}})
    await kube.create_secret("docs-token", {"token": "t0ken"})
    await kube.create("mcpexternalauthconfigs", bearer_token("docs-bearer", "docs-token", "token"))
    forward = {"addPlaintextHeaders": {"X-Client": "mcp-operator"}}
    await kube.create(
        ENTRIES,
        entry(
            "docs",
            "https://mcp.docs.example.com/mcp",
            externalAuthConfigRef={"name": "docs-bearer"},
            headerForward=forward,
        ),
    )
    await kube.create(
        ENTRIES, entry("lab", "http://10.20.30.40:8080/sse", transport="sse", allowPrivateEndpoint=True)
    )
    await kube.create(GATEWAYS, gateway("gw"))

    routed = await backends(kube, "gw", {"docs", "lab"})
    docs = routed["docs"]
    assert docs["url"] == "https://mcp.docs.example.com/mcp" and docs["transport"] == "streamable-http"
    assert docs["allowPrivateEndpoint"] is False
    assert docs["headerForward"]["addPlaintextHeaders"] == forward["addPlaintextHeaders"]
    assert docs["auth"]["type"] == "bearerToken" and "t0ken" not in yaml.safe_dump(routed)
    assert routed["lab"]["allowPrivateEndpoint"] is True and routed["lab"]["transport"] == "sse"
    # The credential reaches the gateway as an env var from the Secret, never through the ConfigMap.
    # The ConfigMap is applied before the Deployment in one reconcile, so the Deployment read right after
    # the ConfigMap shows both entries can still be the one from the reconcile before: wait for the env.
    wanted_ref = {"secretKeyRef": {"name": "docs-token", "key": "token"}}

    async def credential_env() -> list[dict[str, Any]] | None:
        dep = await kube.child("Deployment", "gw")
        env = dep["spec"]["template"]["spec"]["containers"][0].get("env", []) if dep else []
        return env if wanted_ref in [e.get("valueFrom") for e in env] else None

    env = await eventually(credential_env, what="the gateway's env var from the docs-token Secret")
    assert all("t0ken" not in str(e.get("value", "")) for e in env)

    valid = await phase(kube, "docs", "Valid")
    assert (condition(valid, "Accepted") or {})["status"] == "True"
    assert (condition(valid, "ResolvedRefs") or {})["status"] == "True"
    in_use = await kube.wait_condition(ENTRIES, "docs", "InUse", status="True")
    assert in_use["message"] == "routed to by VirtualMCPServer/gw", in_use

    async def listed() -> dict[str, Any] | None:
        status = (await kube.get("mcpgroups", "remote")).get("status") or {}
        return status if status.get("entryCount") == 2 else None

    group = await eventually(listed, what="the group listing its entries")
    assert group["entries"] == ["docs", "lab"] and group["serverCount"] == 0
    gw_status = await eventually(
        lambda: _discovered(kube, "gw", 2), what="discoveredBackends listing both entries"
    )
    assert {(b["name"], b["kind"], b["url"]) for b in gw_status} == {
        ("docs", "MCPServerEntry", "https://mcp.docs.example.com/mcp"),
        ("lab", "MCPServerEntry", "http://10.20.30.40:8080/sse"),
    }
    table = mcp_crds.kubectl("get", "mcpentry", "-n", kube.ns).stdout.splitlines()
    assert table[0].split() == ["NAME", "PHASE", "TRANSPORT", "REMOTE", "URL", "GROUP", "AGE"]
    assert table[1].split()[:5] == [
        "docs",
        "Valid",
        "streamable-http",
        "https://mcp.docs.example.com/mcp",
        "remote",
    ]

    # Leaving the group takes the backend out of the gateway.
    await kube.delete(ENTRIES, "lab")
    await backends(kube, "gw", {"docs"})


async def _discovered(kube: Api, name: str, count: int) -> list[dict[str, Any]] | None:
    items = ((await kube.get(GATEWAYS, name)).get("status") or {}).get("discoveredBackends") or []
    return items if len(items) == count else None


async def test_an_invalid_or_unresolved_entry_is_never_routed_to(operator: Operator, kube: Api) -> None:
    await kube.create("mcpgroups", {"kind": "MCPGroup", "metadata": {"name": "remote"}, "spec": {}})
    await kube.create(GATEWAYS, gateway("gw"))
    await kube.create(ENTRIES, entry("ok", "https://mcp.example.com/mcp"))
    await kube.create(ENTRIES, entry("metadata", "http://169.254.169.254/mcp", allowPrivateEndpoint=True))
    await kube.create(ENTRIES, entry("internal", "http://docs.tools.svc.cluster.local/mcp"))
    await kube.create(
        ENTRIES, entry("no-auth", "https://mcp.example.com/b", externalAuthConfigRef={"name": "gone"})
    )
    await backends(kube, "gw", {"ok"})

    refused = await phase(kube, "metadata", "Failed")
    accepted = condition(refused, "Accepted") or {}
    assert accepted["status"] == "False" and accepted["message"].startswith("spec.remoteUrl: "), accepted
    assert "cloud metadata" in accepted["message"] or "link-local" in accepted["message"], accepted
    internal = condition(await phase(kube, "internal", "Failed"), "Accepted") or {}
    assert "set allowPrivateEndpoint: true" in internal["message"], internal
    pending = await phase(kube, "no-auth", "Pending")
    refs = condition(pending, "ResolvedRefs") or {}
    assert refs["reason"] == "ExternalAuthConfigNotFound" and "'gone'" in refs["message"], refs
    assert (condition(pending, "InUse") or {})["status"] == "False"

    # The gateway says why a member is left out, naming it (the status read after the ConfigMap can be the
    # previous reconcile's, from before the group reached the operator's cache: wait for this one's).
    async def naming_members() -> dict[str, Any] | None:
        cond = condition(await kube.get(GATEWAYS, "gw"), "ResolvedRefs") or {}
        return cond if "MCPServerEntry 'metadata'" in cond.get("message", "") else None

    resolved = await eventually(naming_members, what="the gateway's ResolvedRefs naming the left-out members")
    assert resolved["status"] == "False", resolved
    assert "MCPServerEntry 'metadata' is invalid" in resolved["message"], resolved
    assert "MCPExternalAuthConfig 'gone'" in resolved["message"], resolved

    # Fixed, it is routed to.
    await kube.patch(ENTRIES, "internal", {"spec": {"allowPrivateEndpoint": True}})
    await kube.create_secret("k", {"v": "x"})
    await kube.create("mcpexternalauthconfigs", bearer_token("gone", "k", "v"))
    await backends(kube, "gw", {"ok", "internal", "no-auth"})
    await phase(kube, "no-auth", "Valid")


async def test_entries_and_shared_oidc_and_telemetry_configs_cost_no_write_in_steady_state(
    mcp_crds: Cluster, namespace: str, kube: Api
) -> None:
    """Converged, the new kinds and the workloads referring to them write nothing on resyncs (the status
    lists they write, ``referencingWorkloads`` among them, are stable)."""
    await kube.create("mcpgroups", {"kind": "MCPGroup", "metadata": {"name": "remote"}, "spec": {}})
    issuer = "https://login.example.com/realms/staff"
    await kube.create(
        "mcpoidcconfigs",
        {
            "kind": "MCPOIDCConfig",
            "metadata": {"name": "idp"},
            "spec": {"type": "inline", "inline": {"issuer": issuer}},
        },
    )
    otel = {
        "enabled": True,
        "endpoint": "otel-collector:4318",
        "insecure": True,
        "metrics": {"enabled": True},
    }
    await kube.create(
        "mcptelemetryconfigs",
        {"kind": "MCPTelemetryConfig", "metadata": {"name": "otel"}, "spec": {"openTelemetry": otel}},
    )
    await kube.create(ENTRIES, entry("docs", "https://mcp.docs.example.com/mcp"))
    auth = {"type": "oidc", "oidcConfigRef": {"name": "idp", "audience": "gw"}}
    await kube.create(GATEWAYS, {**gateway("gw"), "spec": {**gateway("gw")["spec"], "incomingAuth": auth}})
    await kube.create(
        "mcpservers",
        server(
            "fetch",
            transport="streamable-http",
            groupRef={"name": "remote"},
            oidcConfigRef={"name": "idp", "audience": "fetch"},
            telemetryConfigRef={"name": "otel"},
        ),
    )
    async with run_operator(mcp_crds.kubeconfig, namespace, resync_period=1.0) as op:
        await backends(kube, "gw", {"docs"})
        await kube.wait_condition("mcpoidcconfigs", "idp", "InUse", status="True")
        await kube.wait_condition("mcptelemetryconfigs", "otel", "InUse", status="True")
        await phase(kube, "docs", "Valid")
        writes_before = await op.settled(quiet=5, within=120)
        await op.resync_window(3)
        assert op.writes() == writes_before, f"{op.writes() - writes_before:.0f} writes in steady state"


async def test_an_entry_with_a_ca_bundle_is_routed_only_while_its_certificates_are_there(
    operator: Operator, kube: Api
) -> None:
    await kube.create("mcpgroups", {"kind": "MCPGroup", "metadata": {"name": "remote"}, "spec": {}})
    await kube.create(GATEWAYS, gateway("gw"))
    await kube.create(ENTRIES, entry("ok", "https://mcp.example.com/mcp"))
    ca_ref = {"configMapRef": {"name": "corp-ca", "key": "ca.crt"}}
    await kube.create(ENTRIES, entry("internal", "https://mcp.corp.example.com/mcp", caBundleRef=ca_ref))
    await backends(kube, "gw", {"ok"})
    await phase(kube, "internal", "Pending")
    refs = await kube.wait_condition(ENTRIES, "internal", "ResolvedRefs", reason="CABundleNotFound")
    assert refs["status"] == "False" and "ConfigMap 'corp-ca' does not exist" in refs["message"], refs

    def bundle(text: str) -> dict[str, Any]:
        return {"kind": "ConfigMap", "metadata": {"name": "corp-ca"}, "data": {"ca.crt": text}}

    await kube.core.create_namespaced_config_map(kube.ns, bundle("not a certificate"))
    refs = await kube.wait_condition(ENTRIES, "internal", "ResolvedRefs", reason="CABundleInvalid")
    assert "ConfigMap 'corp-ca' key 'ca.crt': the CA bundle holds no PEM certificate" in refs["message"]

    first, rotated = private_ca_server().ca_pem, private_ca_server("rotated CA").ca_pem
    await kube.core.patch_namespaced_config_map("corp-ca", kube.ns, bundle(first))
    routed = await backends(kube, "gw", {"ok", "internal"})
    assert routed["internal"]["caBundle"] == first and "caBundle" not in routed["ok"]
    await phase(kube, "internal", "Valid")

    # A new CA reaches the gateway's config (a reload, no rollout); removing it stops the routing.
    await kube.core.patch_namespaced_config_map("corp-ca", kube.ns, bundle(rotated))

    async def rotated_in() -> bool:
        found = await backends(kube, "gw", {"ok", "internal"})
        return found["internal"]["caBundle"] == rotated

    await eventually(rotated_in, what="the rotated CA in the gateway's config")
    await kube.core.delete_namespaced_config_map("corp-ca", kube.ns)
    await backends(kube, "gw", {"ok"})
    await phase(kube, "internal", "Pending")
