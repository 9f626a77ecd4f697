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
from tests.support.cluster import Cluster
from tests.support.documents import is_subset

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "manifests" / "crds"
GV = "mcp-operator.dev/v1alpha1"
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
    objects = client.CustomObjectsApi(api)
    kwargs = {"dry_run": "All"} if dry_run else {}
    return await objects.create_namespaced_custom_object(
        "mcp-operator.dev", "v1alpha1", namespace, _plural(doc["kind"]), doc, **kwargs
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

# (case id, kind, spec, field the API server's message must name)
INVALID: list[tuple[str, str, Any, str]] = [
    ("server without spec", "MCPServer", _NO_SPEC, "spec"),
    ("missing image", "MCPServer", {"transport": "stdio"}, "spec.image"),
    ("empty image", "MCPServer", {"image": ""}, "spec.image"),
    ("unknown transport", "MCPServer", {**SRV, "transport": "tcp"}, "spec.transport"),
    ("proxy port zero", "MCPServer", {**SRV, "proxyPort": 0}, "spec.proxyPort"),
    ("proxy port too big", "MCPServer", {**SRV, "proxyPort": 70000}, "spec.proxyPort"),
    ("negative mcp port", "MCPServer", {**SRV, "mcpPort": -1}, "spec.mcpPort"),
    ("negative replicas", "MCPServer", {**SRV, "replicas": -1}, "spec.replicas"),
    ("replicas as text", "MCPServer", {**SRV, "replicas": "two"}, "spec.replicas"),
    ("negative backend replicas", "MCPServer", {**SRV, "backendReplicas": -2}, "spec.backendReplicas"),
    ("args not a list", "MCPServer", {**SRV, "args": "--flag"}, "spec.args"),
    ("env without name", "MCPServer", {**SRV, "env": [{"value": "x"}]}, "spec.env[0].name"),
    (
        "env name not a variable",
        "MCPServer",
        {**SRV, "env": [{"name": "1BAD", "value": "x"}]},
        "spec.env[0].name",
    ),
    ("secret without key", "MCPServer", {**SRV, "secrets": [{"name": "s"}]}, "spec.secrets[0].key"),
    (
        "bad cpu quantity",
        "MCPServer",
        {**SRV, "resources": {"limits": {"cpu": "lots"}}},
        "spec.resources.limits.cpu",
    ),
    (
        "bad proxy memory",
        "MCPServer",
        {**SRV, "proxyResources": {"requests": {"memory": "1 GB"}}},
        "spec.proxyResources.requests.memory",
    ),
    ("pod template not an object", "MCPServer", {**SRV, "podTemplateSpec": "x"}, "spec.podTemplateSpec"),
    ("tool config ref without name", "MCPServer", {**SRV, "toolConfigRef": {}}, "spec.toolConfigRef.name"),
    ("group name not DNS", "MCPServer", {**SRV, "groupRef": {"name": "Bad_Name"}}, "spec.groupRef.name"),
    ("unknown proxy mode", "MCPServer", {**SRV, "proxyMode": "ws"}, "spec.proxyMode"),
    (
        "malformed issuer URL",
        "MCPServer",
        {**SRV, "oidcConfig": {"inline": {"issuer": "not a url"}}},
        "spec.oidcConfig.inline.issuer",
    ),
    (
        "unsupported oidc type",
        "MCPServer",
        {**SRV, "oidcConfig": {"type": "kubernetes"}},
        "spec.oidcConfig.type",
    ),
    ("audit flag as text", "MCPServer", {**SRV, "audit": {"enabled": "yes"}}, "spec.audit.enabled"),
    ("missing remote URL", "MCPRemoteProxy", {"transport": "sse"}, "spec.remoteUrl"),
    ("remote URL not http", "MCPRemoteProxy", {"remoteUrl": "ftp://files.example.com"}, "spec.remoteUrl"),
    ("remote stdio transport", "MCPRemoteProxy", {**RP, "transport": "stdio"}, "spec.transport"),
    (
        "private flag as text",
        "MCPRemoteProxy",
        {**RP, "allowPrivateEndpoint": "true"},
        "spec.allowPrivateEndpoint",
    ),
    (
        "secret header without ref",
        "MCPRemoteProxy",
        {**RP, "headerForward": {"addHeadersFromSecret": [{"headerName": "X-Key"}]}},
        "spec.headerForward.addHeadersFromSecret[0].valueSecretRef",
    ),
    (
        "header name with a space",
        "MCPRemoteProxy",
        {**RP, "headerForward": {"addHeadersFromSecret": [{"headerName": "X Key", "valueSecretRef": REF}]}},
        "spec.headerForward.addHeadersFromSecret[0].headerName",
    ),
    ("vmcp without group", "VirtualMCPServer", {"incomingAuth": {"type": "anonymous"}}, "spec.groupRef"),
    ("vmcp without incoming auth", "VirtualMCPServer", {"groupRef": {"name": "g"}}, "spec.incomingAuth"),
    (
        "unknown incoming auth",
        "VirtualMCPServer",
        {**VM, "incomingAuth": {"type": "basic"}},
        "spec.incomingAuth.type",
    ),
    (
        "unknown conflict resolution",
        "VirtualMCPServer",
        {**VM, "config": {"aggregation": {"conflictResolution": "random"}}},
        "spec.config.aggregation.conflictResolution",
    ),
    ("unknown service type", "VirtualMCPServer", {**VM, "serviceType": "ExternalName"}, "spec.serviceType"),
    (
        "tools entry without workload",
        "VirtualMCPServer",
        {**VM, "config": {"aggregation": {"tools": [{"filter": ["a"]}]}}},
        "spec.config.aggregation.tools[0].workload",
    ),
    (
        "malformed timeout",
        "VirtualMCPServer",
        {**VM, "config": {"operational": {"timeouts": {"default": "soon"}}}},
        "spec.config.operational.timeouts.default",
    ),
    (
        "unknown outgoing source",
        "VirtualMCPServer",
        {**VM, "outgoingAuth": {"source": "magic"}},
        "spec.outgoingAuth.source",
    ),
    ("filter not a list", "MCPToolConfig", {"toolsFilter": "fetch"}, "spec.toolsFilter"),
    (
        "override name with spaces",
        "MCPToolConfig",
        {"toolsOverride": {"fetch": {"name": "bad name!"}}},
        "spec.toolsOverride.fetch.name",
    ),
    ("auth without type", "MCPExternalAuthConfig", {"bearerToken": {"tokenSecretRef": REF}}, "spec.type"),
    ("unknown auth type", "MCPExternalAuthConfig", {"type": "kerberos"}, "spec.type"),
    (
        "header injection without secret",
        "MCPExternalAuthConfig",
        {"type": "headerInjection", "headerInjection": {"headerName": "X-Key"}},
        "spec.headerInjection.valueSecretRef",
    ),
    (
        "token URL not a URL",
        "MCPExternalAuthConfig",
        {"type": "tokenExchange", "tokenExchange": {"tokenUrl": "nope"}},
        "spec.tokenExchange.tokenUrl",
    ),
    ("group description not text", "MCPGroup", {"description": 5}, "spec.description"),
]


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
        ported = {**doc, "apiVersion": GV}
        stored = await _create(api_client, namespace, ported)
        # Nothing was pruned or changed (the server only added defaults).
        assert is_subset(doc["spec"], stored["spec"]), (doc["metadata"]["name"], stored["spec"])


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
