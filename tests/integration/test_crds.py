"""The generated CRDs on the real kube-apiserver: installed, enforced, defaulted, listed by kubectl."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client

from api.registry import KINDS, model_for
from controller.core.objects import carries
from tests.support.cluster import Cluster

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "manifests" / "crds"
GV = "mcp-operator.dev/v1beta1"
EXAMPLE_DOCS = [
    doc
    for path in sorted((ROOT / "examples").glob("*.yaml"))
    for doc in yaml.safe_load_all(path.read_text())
    if doc and str(doc.get("apiVersion", "")).startswith("mcp-operator.dev/")  # not the Secrets they carry
]
TOOLHIVE_DOCS = [
    yaml.safe_load(p.read_text()) for p in sorted((ROOT / "tests" / "fixtures" / "toolhive").glob("*.yaml"))
]


@pytest.fixture(scope="module")
def crds(cluster: Cluster) -> Cluster:
    """The CRDs from manifests/crds applied and Established (left installed for later tests)."""
    cluster.kubectl("apply", "-f", str(CRD_DIR))
    cluster.kubectl(
        "wait", "--for=condition=established", "--timeout=60s", *(f"crd/{i.crd_name}" for i in KINDS.values())
    )
    return cluster


def test_every_crd_is_established_with_its_names(crds: Cluster) -> None:
    for info in KINDS.values():
        crd = json.loads(crds.kubectl("get", f"crd/{info.crd_name}", "-o", "json").stdout)
        conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        assert conditions["Established"] == "True" and conditions["NamesAccepted"] == "True", info.kind
        names = crd["status"]["acceptedNames"]
        assert names["shortNames"] == list(info.short_names) and names["categories"] == ["mcp"]


def _plural(kind: str) -> str:
    return KINDS[kind].plural


async def _create(api: client.ApiClient, namespace: str, doc: dict[str, Any], dry_run: bool = False) -> Any:
    """Create ``doc`` through the version its ``apiVersion`` names."""
    objects = client.CustomObjectsApi(api)
    kwargs = {"dry_run": "All"} if dry_run else {}
    group, version = str(doc["apiVersion"]).split("/")
    return await objects.create_namespaced_custom_object(
        group, version, namespace, _plural(doc["kind"]), doc, **kwargs
    )


def _obj(kind: str, spec: Any, name: str = "bad") -> dict[str, Any]:
    doc: dict[str, Any] = {"apiVersion": GV, "kind": kind, "metadata": {"name": name}}
    if spec is not _NO_SPEC:
        doc["spec"] = spec
    return doc


_NO_SPEC = object()
SRV = {"image": "img"}
RP = {"remoteUrl": "https://mcp.example.com/mcp"}
VM = {"groupRef": {"name": "g"}, "incomingAuth": {"type": "anonymous"}}
REF = {"name": "s", "key": "k"}

# kind -> (case id, spec, field the API server's message must name)
INVALID_BY_KIND: dict[str, list[tuple[str, Any, str]]] = {
    "MCPServer": [
        ("server without spec", _NO_SPEC, "spec"),
        ("missing image", {"transport": "stdio"}, "spec.image"),
        ("empty image", {"image": ""}, "spec.image"),
        ("unknown transport", {**SRV, "transport": "tcp"}, "spec.transport"),
        ("proxy port zero", {**SRV, "proxyPort": 0}, "spec.proxyPort"),
        ("proxy port too big", {**SRV, "proxyPort": 70000}, "spec.proxyPort"),
        ("negative mcp port", {**SRV, "mcpPort": -1}, "spec.mcpPort"),
        ("negative replicas", {**SRV, "replicas": -1}, "spec.replicas"),
        ("replicas as text", {**SRV, "replicas": "two"}, "spec.replicas"),
        ("negative backend replicas", {**SRV, "backendReplicas": -2}, "spec.backendReplicas"),
        ("args not a list", {**SRV, "args": "--flag"}, "spec.args"),
        ("env without name", {**SRV, "env": [{"value": "x"}]}, "spec.env[0].name"),
        ("env name not a variable", {**SRV, "env": [{"name": "1BAD", "value": "x"}]}, "spec.env[0].name"),
        ("secret without key", {**SRV, "secrets": [{"name": "s"}]}, "spec.secrets[0].key"),
        ("bad cpu quantity", {**SRV, "resources": {"limits": {"cpu": "lots"}}}, "spec.resources.limits.cpu"),
        (
            "bad proxy memory",
            {**SRV, "proxyResources": {"requests": {"memory": "1 GB"}}},
            "spec.proxyResources.requests.memory",
        ),
        ("pod template not an object", {**SRV, "podTemplateSpec": "x"}, "spec.podTemplateSpec"),
        ("tool config ref without name", {**SRV, "toolConfigRef": {}}, "spec.toolConfigRef.name"),
        ("group name not DNS", {**SRV, "groupRef": {"name": "Bad_Name"}}, "spec.groupRef.name"),
        ("unknown proxy mode", {**SRV, "proxyMode": "ws"}, "spec.proxyMode"),
        (
            "malformed issuer URL",
            {**SRV, "oidcConfig": {"inline": {"issuer": "not a url"}}},
            "spec.oidcConfig.inline.issuer",
        ),
        ("unsupported oidc type", {**SRV, "oidcConfig": {"type": "kubernetes"}}, "spec.oidcConfig.type"),
        ("audit flag as text", {**SRV, "audit": {"enabled": "yes"}}, "spec.audit.enabled"),
    ],
    "MCPRemoteProxy": [
        ("missing remote URL", {"transport": "sse"}, "spec.remoteUrl"),
        ("remote URL not http", {"remoteUrl": "ftp://files.example.com"}, "spec.remoteUrl"),
        ("remote stdio transport", {**RP, "transport": "stdio"}, "spec.transport"),
        ("private flag as text", {**RP, "allowPrivateEndpoint": "true"}, "spec.allowPrivateEndpoint"),
        (
            "secret header without ref",
            {**RP, "headerForward": {"addHeadersFromSecret": [{"headerName": "X-Key"}]}},
            "spec.headerForward.addHeadersFromSecret[0].valueSecretRef",
        ),
        (
            "header name with a space",
            {
                **RP,
                "headerForward": {"addHeadersFromSecret": [{"headerName": "X Key", "valueSecretRef": REF}]},
            },
            "spec.headerForward.addHeadersFromSecret[0].headerName",
        ),
    ],
    "VirtualMCPServer": [
        ("vmcp without group", {"incomingAuth": {"type": "anonymous"}}, "spec.groupRef"),
        ("vmcp without incoming auth", {"groupRef": {"name": "g"}}, "spec.incomingAuth"),
        ("unknown incoming auth", {**VM, "incomingAuth": {"type": "basic"}}, "spec.incomingAuth.type"),
        (
            "unknown conflict resolution",
            {**VM, "config": {"aggregation": {"conflictResolution": "random"}}},
            "spec.config.aggregation.conflictResolution",
        ),
        ("unknown service type", {**VM, "serviceType": "ExternalName"}, "spec.serviceType"),
        (
            "tools entry without workload",
            {**VM, "config": {"aggregation": {"tools": [{"filter": ["a"]}]}}},
            "spec.config.aggregation.tools[0].workload",
        ),
        (
            "malformed timeout",
            {**VM, "config": {"operational": {"timeouts": {"default": "soon"}}}},
            "spec.config.operational.timeouts.default",
        ),
        ("unknown outgoing source", {**VM, "outgoingAuth": {"source": "magic"}}, "spec.outgoingAuth.source"),
    ],
    "MCPToolConfig": [
        ("filter not a list", {"toolsFilter": "fetch"}, "spec.toolsFilter"),
        (
            "override name with spaces",
            {"toolsOverride": {"fetch": {"name": "bad name!"}}},
            "spec.toolsOverride.fetch.name",
        ),
    ],
    "MCPExternalAuthConfig": [
        ("auth without type", {"bearerToken": {"tokenSecretRef": REF}}, "spec.type"),
        ("unknown auth type", {"type": "kerberos"}, "spec.type"),
        (
            "header injection without secret",
            {"type": "headerInjection", "headerInjection": {"headerName": "X-Key"}},
            "spec.headerInjection.valueSecretRef",
        ),
        (
            "token URL not a URL",
            {"type": "tokenExchange", "tokenExchange": {"tokenUrl": "nope"}},
            "spec.tokenExchange.tokenUrl",
        ),
    ],
    "MCPGroup": [
        ("group description not text", {"description": 5}, "spec.description"),
    ],
}
INVALID = [(case, kind, spec, field) for kind, rows in INVALID_BY_KIND.items() for case, spec, field in rows]


@pytest.mark.parametrize(("kind", "spec", "field"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
async def test_api_server_rejects_invalid_object_naming_the_field(
    crds: Cluster, api_client: client.ApiClient, kind: str, spec: Any, field: str
) -> None:
    with pytest.raises(client.ApiException) as err:
        await _create(api_client, "default", _obj(kind, spec), dry_run=True)
    assert err.value.status == 422, err.value.body
    message = json.loads(err.value.body)["message"]
    # Kubernetes v1.20 names a field inside a list without the item's index (spec.env.name).
    path = re.sub(r"\[\d+\]", "", field)
    assert re.search(rf"(^|\s){re.escape(path)}(:|\s)", message), message


async def test_examples_round_trip_through_the_api_server(
    crds: Cluster, api_client: client.ApiClient, namespace: str
) -> None:
    for doc in EXAMPLE_DOCS:
        stored = await _create(api_client, namespace, doc)
        model = model_for(doc["kind"])
        assert model.from_dict(stored).model_dump() | {"metadata": None} == (
            model.from_dict(doc).model_dump() | {"metadata": None}
        ), doc["metadata"]["name"]


@pytest.mark.parametrize(
    ("kind", "spec"),
    [
        ("MCPServer", {"image": "img"}),
        ("MCPRemoteProxy", {"remoteUrl": "https://mcp.example.com/mcp"}),
        ("VirtualMCPServer", {"groupRef": {"name": "g"}, "incomingAuth": {"type": "anonymous"}}),
        ("MCPExternalAuthConfig", {"type": "unauthenticated"}),
        ("MCPToolConfig", {}),
        ("MCPGroup", {}),
    ],
)
async def test_api_server_defaults_equal_the_model_defaults(
    crds: Cluster, api_client: client.ApiClient, kind: str, spec: dict[str, Any]
) -> None:
    stored = await _create(api_client, "default", _obj(kind, spec, name="defaults"), dry_run=True)
    assert stored["spec"] == model_for(kind).from_dict({"spec": spec}).to_json()["spec"]


async def test_toolhive_manifests_port_by_changing_only_api_version(
    crds: Cluster, api_client: client.ApiClient, namespace: str
) -> None:
    assert len(TOOLHIVE_DOCS) >= 5
    for doc in TOOLHIVE_DOCS:
        ported = {
            **doc,
            "apiVersion": doc["apiVersion"].replace("toolhive.stacklok.dev/", "mcp-operator.dev/"),
        }
        stored = await _create(api_client, namespace, ported)
        # Nothing was pruned or changed (the server only added defaults).
        assert carries(stored["spec"], doc["spec"]), (doc["metadata"]["name"], stored["spec"])


def _tables(output: str) -> dict[str, list[str]]:
    """``kubectl get mcp`` prints one table per kind: resource name -> column headers."""
    tables = {}
    for block in output.strip().split("\n\n"):
        lines = block.strip().splitlines()
        headers = re.split(r"\s{2,}", lines[0].strip())
        resource = lines[1].split()[0].split("/")[0].split(".")[0]
        tables[resource] = headers
    return tables


async def test_kubectl_get_mcp_lists_every_kind_with_its_columns(crds: Cluster, namespace: str) -> None:
    ns = namespace
    crds.kubectl("apply", "-n", ns, "-f", str(ROOT / "examples"))
    status = {
        "phase": "Running",
        "readyReplicas": 1,
        "url": f"http://fetch.{ns}.svc.cluster.local:8080/mcp",
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Ready",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
        ],
    }
    crds.kubectl(
        "patch",
        "mcpserver",
        "fetch",
        "-n",
        ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )
    tables = _tables(crds.kubectl("get", "mcp", "-n", ns).stdout)
    assert tables["mcpserver"] == ["NAME", "PHASE", "READY", "REPLICAS", "URL", "AGE"]
    assert tables["mcpremoteproxy"] == ["NAME", "PHASE", "REMOTE URL", "URL", "READY", "AGE"]
    assert tables["virtualmcpserver"] == ["NAME", "PHASE", "BACKENDS", "URL", "READY", "AGE"]
    assert tables["mcpgroup"] == ["NAME", "SERVERS", "PROXIES", "PHASE", "AGE"]
    assert tables["mcptoolconfig"] == tables["mcpexternalauthconfig"] == ["NAME", "VALID", "AGE"]
    row = crds.kubectl("get", "mcps", "fetch", "-n", ns, "--no-headers").stdout.split()
    assert row[:5] == ["fetch", "Running", "True", "1", status["url"]]
    # The status subresource: the status write did not touch the spec, a spec write does not touch status.
    crds.kubectl("patch", "mcpserver", "fetch", "-n", ns, "--type=merge", "-p", '{"spec":{"proxyPort":9090}}')
    stored = json.loads(crds.kubectl("get", "mcpserver", "fetch", "-n", ns, "-o", "json").stdout)
    assert stored["spec"]["image"] == "docker.io/mcp/fetch:latest" and stored["status"]["phase"] == "Running"
    assert stored["metadata"]["generation"] == 2


async def test_both_versions_are_served_with_one_schema_and_read_as_either(
    crds: Cluster, api_client: client.ApiClient, namespace: str
) -> None:
    objects = client.CustomObjectsApi(api_client)
    spec = {"image": "img", "transport": "sse", "mcpPort": 9000}
    for version in ("v1alpha1", "v1beta1"):
        doc = {
            "apiVersion": f"mcp-operator.dev/{version}",
            "kind": "MCPServer",
            "metadata": {"name": version},
        }
        await _create(api_client, namespace, {**doc, "spec": spec})
    for stored_as in ("v1alpha1", "v1beta1"):
        for read_as in ("v1alpha1", "v1beta1"):
            got = await objects.get_namespaced_custom_object(
                "mcp-operator.dev", read_as, namespace, "mcpservers", stored_as
            )
            assert got["apiVersion"] == f"mcp-operator.dev/{read_as}"
            assert got["spec"] == {**spec, "proxyMode": "streamable-http", "proxyPort": 8080}
    crd = json.loads(crds.kubectl("get", "crd", "mcpservers.mcp-operator.dev", "-o", "json").stdout)
    assert "v1beta1" in crd["status"]["storedVersions"]
    # kubectl warns about the deprecated version, and still applies it.
    old = {"apiVersion": "mcp-operator.dev/v1alpha1", "kind": "MCPGroup", "metadata": {"name": "old"}}
    applied = crds.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(old))
    assert "mcp-operator.dev/v1alpha1 MCPGroup is deprecated; use mcp-operator.dev/v1beta1" in applied.stderr


@pytest.mark.parametrize("version", ["v1beta1", "v1alpha1"])
def test_kubectl_explain_describes_fields_in_both_versions(crds: Cluster, version: str) -> None:
    def explain(field: str) -> str:
        api_version = f"--api-version=mcp-operator.dev/{version}"
        return " ".join(crds.kubectl("explain", field, api_version).stdout.split())

    assert f"VERSION: mcp-operator.dev/{version}" in explain("mcpservers")
    assert "Container image of the MCP server" in explain("mcpservers.spec.image")
    reserved = explain("virtualmcpservers.spec.authServerConfig")
    assert "Not supported yet: an object that sets it is refused (Accepted=False)" in reserved
    assert "Expected `aud` claim of the tokens this endpoint accepts" in explain(
        "mcpservers.spec.oidcConfigRef.audience"
    )
    assert "(kind and name)" in explain("mcpoidcconfigs.status.referencingWorkloads")
    assert "The gateway checks what the name resolves to" in explain("mcpserverentries.spec.remoteUrl")
    assert "The CAs that verify the remote server's TLS certificate" in explain(
        "mcpserverentries.spec.caBundleRef"
    )
    semantic = explain("virtualmcpservers.spec.config.optimizer.embeddingService")
    assert "Base URL of the embedding service of semantic search" in semantic
