"""MCPServer end to end on the real kube-apiserver: children, status, rollouts, refs, repair."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.cluster import Cluster
from tests.support.kube import Api, condition
from tests.support.mcpserver import PLURAL, make_ready, ready, server
from tests.support.operator import Operator
from tests.support.waiting import eventually

HASH = "mcp-operator.dev/config-hash"


async def children_of(kube: Api, name: str, transport: str) -> dict[str, Any]:
    kinds = {
        "Deployment": name,
        "StatefulSet": f"{name}-server",
        "Service": name,
        "ConfigMap": f"{name}-proxy",
        "ServiceAccount": f"{name}-proxy",
    }
    found = {kind: await kube.child(kind, child) for kind, child in kinds.items()}
    found["ServerAccount"] = await kube.child("ServiceAccount", f"{name}-server")
    found["Headless"] = await kube.child("Service", f"{name}-server")
    found["Role"] = await kube.child("Role", f"{name}-proxy")
    found["RoleBinding"] = await kube.child("RoleBinding", f"{name}-proxy")
    return found


@pytest.mark.parametrize("transport", ["stdio", "sse", "streamable-http"])
async def test_children_status_and_kubectl_wait(
    operator: Operator, kube: Api, mcp_crds: Cluster, transport: str
) -> None:
    name = f"s-{transport.replace('-', '')}"
    await kube.create(
        PLURAL, server(name, transport=transport, args=["--flag"], env=[{"name": "A", "value": "1"}])
    )
    await eventually(lambda: kube.child("ConfigMap", f"{name}-proxy"), what="proxy ConfigMap")
    found = await eventually(
        lambda: _all_present(kube, name, transport), what=f"children of a {transport} MCPServer"
    )
    owner_uid = (await kube.get(PLURAL, name))["metadata"]["uid"]
    for kind, obj in found.items():
        if obj is not None:
            assert obj["metadata"]["ownerReferences"][0]["uid"] == owner_uid, kind

    sts = found["StatefulSet"]
    container = sts["spec"]["template"]["spec"]["containers"][0]
    assert container["name"] == "mcp" and container["image"] == "ghcr.io/example/mcp:1"
    assert container["args"] == ["--flag"]
    assert container["env"] == [{"name": "HOME", "value": "/tmp"}, {"name": "A", "value": "1"}]
    assert sts["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    proxy = found["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert proxy["securityContext"]["readOnlyRootFilesystem"] is True
    config = json.loads(found["ConfigMap"]["data"]["proxy.json"])
    if transport == "stdio":
        assert container["stdin"] is True
        assert config["backend"] == {"type": "attach", "namespace": kube.ns, "pod": f"{name}-server-0"}
        assert found["Headless"] is None
        rules = found["Role"]["rules"]
        assert {tuple(r["resourceNames"]) for r in rules} == {(f"{name}-server-0",)}
        assert sorted(v for r in rules for v in r["verbs"]) == ["create", "get", "get", "watch"]
    else:
        path = "/sse" if transport == "sse" else "/mcp"
        assert config["backend"]["url"] == f"http://{name}-server.{kube.ns}.svc.cluster.local:8080{path}"
        assert found["Headless"]["spec"]["clusterIP"] == "None"
        assert found["Role"] is None and found["RoleBinding"] is None

    async def first_status() -> dict[str, Any] | None:
        got: dict[str, Any] = await kube.get(PLURAL, name)
        return got if got.get("status") else None

    # The status is applied after the children (applied concurrently): seeing them all does not mean
    # the reconcile has finished.
    obj = await eventually(first_status, what="the first status")
    assert obj["status"]["phase"] == "Pending"
    assert condition(obj, "Accepted")["status"] == "True"  # type: ignore[index]

    await make_ready(kube, name)
    obj = await ready(kube, name)
    assert obj["status"]["phase"] == "Running"
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    suffix = "/sse" if transport == "sse" else "/mcp"
    assert obj["status"]["url"] == f"http://{name}.{kube.ns}.svc.cluster.local:8080{suffix}"
    waited = mcp_crds.kubectl(
        "wait", "-n", kube.ns, "--for=condition=Ready", f"mcpserver/{name}", "--timeout=10s"
    )
    assert "condition met" in waited.stdout


async def _all_present(kube: Api, name: str, transport: str) -> dict[str, Any] | None:
    found = await children_of(kube, name, transport)
    needed = ["Deployment", "StatefulSet", "Service", "ConfigMap", "ServiceAccount", "ServerAccount"]
    needed += ["Role", "RoleBinding"] if transport == "stdio" else ["Headless"]
    return found if all(found[k] is not None for k in needed) else None


async def test_config_change_rolls_only_the_proxy_and_port_changes_reach_url(
    operator: Operator, kube: Api
) -> None:
    name = "roll"
    await kube.create(PLURAL, server(name, transport="streamable-http"))
    await kube.create(
        "mcptoolconfigs",
        {"kind": "MCPToolConfig", "metadata": {"name": "tools"}, "spec": {"toolsFilter": ["a"]}},
    )
    dep = await eventually(lambda: kube.child("Deployment", name), what="Deployment")
    first_hash = dep["spec"]["template"]["metadata"]["annotations"][HASH]

    # An env change alters the server pod only: the proxy config hash stays.
    await kube.patch(PLURAL, name, {"spec": {"env": [{"name": "B", "value": "2"}]}})

    async def env_applied() -> bool:
        sts = await kube.child("StatefulSet", f"{name}-server")
        return sts is not None and sts["spec"]["template"]["spec"]["containers"][0].get("env") == [
            {"name": "HOME", "value": "/tmp"},
            {"name": "B", "value": "2"},
        ]

    await eventually(env_applied, what="env on the StatefulSet")
    dep = await kube.child("Deployment", name)
    assert dep is not None and dep["spec"]["template"]["metadata"]["annotations"][HASH] == first_hash

    # A tool filter changes the proxy config: the hash changes, the StatefulSet template does not.
    sts_before = (await kube.child("StatefulSet", f"{name}-server"))["spec"]["template"]  # type: ignore[index]
    await kube.patch(PLURAL, name, {"spec": {"toolConfigRef": {"name": "tools"}}})

    async def rolled() -> str | None:
        d = await kube.child("Deployment", name)
        h = d["spec"]["template"]["metadata"]["annotations"][HASH] if d else None
        return h if h != first_hash else None

    await eventually(rolled, what="a new config hash")

    async def hash_reported() -> bool:
        tools = await kube.get("mcptoolconfigs", "tools")
        status = (await kube.get(PLURAL, name)).get("status", {})
        return (
            bool(status.get("toolConfigHash")) and status["toolConfigHash"] == tools["status"]["configHash"]
        )

    await eventually(hash_reported, what="status.toolConfigHash equal to the MCPToolConfig's configHash")
    # The status is written after every child is applied (they are applied concurrently).
    config = json.loads((await kube.child("ConfigMap", f"{name}-proxy"))["data"]["proxy.json"])  # type: ignore[index]
    assert config["toolFilter"]["allow"] == ["a"]
    assert (await kube.child("StatefulSet", f"{name}-server"))["spec"]["template"] == sts_before  # type: ignore[index]

    # The port follows into the Service and status.url.
    await kube.patch(PLURAL, name, {"spec": {"proxyPort": 9090}})

    async def url_moved() -> bool:
        obj = await kube.get(PLURAL, name)
        return bool(obj.get("status", {}).get("url", "").endswith(":9090/mcp"))

    await eventually(url_moved, what="status.url on port 9090")
    svc = await kube.child("Service", name)
    assert svc is not None and svc["spec"]["ports"][0]["port"] == 9090
    obj = await kube.get(PLURAL, name)
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]


OVERRIDES = {
    "proxyDeployment": {
        "labels": {"team": "platform"},
        "annotations": {"owner": "platform@example.com"},
        "podTemplateMetadataOverrides": {
            "labels": {"sidecar.example.com/inject": "false"},
            "annotations": {"prometheus.io/scrape": "true"},
        },
        "env": [{"name": "LOG_LEVEL", "value": "debug"}],
        "imagePullSecrets": [{"name": "registry"}],
    },
    "proxyService": {"annotations": {"cloud.example.com/load-balancer": "internal"}},
}


async def test_resource_overrides_patch_the_proxy_and_owned_keys_are_refused(
    operator: Operator, kube: Api
) -> None:
    """ToolHive's ``resourceOverrides`` reach the proxy Deployment, its pods, its ServiceAccount and its
    Service; a key the operator owns is refused by name and the running proxy is left as it was."""
    name = "patched"
    await kube.create(PLURAL, server(name, transport="streamable-http", resourceOverrides=OVERRIDES))
    dep = await kube.wait_child("Deployment", name)
    assert dep["metadata"]["labels"]["team"] == "platform"
    assert dep["metadata"]["annotations"]["owner"] == "platform@example.com"
    template = dep["spec"]["template"]
    assert template["metadata"]["labels"]["sidecar.example.com/inject"] == "false"
    assert template["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert {"name": "LOG_LEVEL", "value": "debug"} in template["spec"]["containers"][0]["env"]
    assert template["spec"]["imagePullSecrets"] == [{"name": "registry"}]
    account = await kube.wait_child("ServiceAccount", f"{name}-proxy")
    assert account["imagePullSecrets"] == [{"name": "registry"}]
    service = await kube.wait_child("Service", name)
    assert service["metadata"]["annotations"]["cloud.example.com/load-balancer"] == "internal"
    # The server pod is the user's to patch through podTemplateSpec; the proxy's additions stay off it.
    sts = await kube.wait_child("StatefulSet", f"{name}-server")
    assert "sidecar.example.com/inject" not in sts["spec"]["template"]["metadata"]["labels"]
    digest = template["metadata"]["annotations"][HASH]

    pinning = {"annotations": {HASH: "pinned"}, "labels": {"app.kubernetes.io/instance": "other"}}
    await kube.patch(
        PLURAL,
        name,
        {"spec": {"resourceOverrides": {"proxyDeployment": {"podTemplateMetadataOverrides": pinning}}}},
    )
    refused = await kube.wait_condition(PLURAL, name, "Accepted", status="False")
    assert refused["reason"] == "InvalidSpec"
    field = "spec.resourceOverrides.proxyDeployment.podTemplateMetadataOverrides"
    assert f"{field}.annotations[{HASH}]" in refused["message"], refused
    assert f"{field}.labels[app.kubernetes.io/instance]" in refused["message"], refused
    kept = await kube.child("Deployment", name)
    assert kept is not None and kept["spec"]["template"]["metadata"]["annotations"][HASH] == digest

    await kube.patch(
        PLURAL,
        name,
        {"spec": {"resourceOverrides": {"proxyDeployment": {"podTemplateMetadataOverrides": None}}}},
    )
    await kube.wait_condition(PLURAL, name, "Accepted", status="True")


async def test_toolhive_volumes_become_host_path_mounts_of_the_server(operator: Operator, kube: Api) -> None:
    volumes = [{"name": "data", "hostPath": "/srv/data", "mountPath": "/data", "readOnly": True}]
    await kube.create(PLURAL, server("with-data", volumes=volumes))
    statefulset = await kube.wait_child("StatefulSet", "with-data-server")
    pod = statefulset["spec"]["template"]["spec"]
    assert {"name": "data", "hostPath": {"path": "/srv/data", "type": ""}} in pod["volumes"]
    assert {"name": "data", "mountPath": "/data", "readOnly": True} in pod["containers"][0]["volumeMounts"]

    clash = {"spec": {"volumes": [{"name": "data", "emptyDir": {}}]}}
    await kube.create(PLURAL, server("clash", volumes=volumes, podTemplateSpec=clash))
    cond = await kube.wait_condition(PLURAL, "clash", "Accepted", status="False")
    assert cond["message"].startswith("spec.volumes[0].name: 'data' is also a volume of spec.podTemplateSpec")


async def test_the_none_permission_profile_owns_an_egress_policy_pruned_when_lifted(
    operator: Operator, kube: Api
) -> None:
    await kube.create(PLURAL, server("isolated", permissionProfile={"type": "builtin", "name": "none"}))
    policy = await kube.wait_child("NetworkPolicy", "isolated-server")
    assert policy["spec"]["policyTypes"] == ["Egress"] and not policy["spec"].get("egress")
    statefulset = await kube.wait_child("StatefulSet", "isolated-server")
    pod_labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    owner = (await kube.get(PLURAL, "isolated"))["metadata"]["uid"]
    assert policy["metadata"]["ownerReferences"][0]["uid"] == owner

    await kube.patch(PLURAL, "isolated", {"spec": {"permissionProfile": {"name": "network"}}})

    async def pruned() -> bool:
        return await kube.child("NetworkPolicy", "isolated-server") is None

    await eventually(pruned, what="the egress policy removed once egress is allowed")
