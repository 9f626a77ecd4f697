"""The CRDs, docs and examples are generated from / agree with the models."""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from api.base import CRDModel
from api.crds import build_crds, render_crd, render_crds
from api.crds_cli import main as crds_main
from api.registry import KINDS
from api.schema import SchemaError, structural_schema
from api.validation import parse_and_validate
from controller.core.objects import carries

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
TOOLHIVE = sorted((ROOT / "tests" / "fixtures" / "toolhive").glob("*.yaml"))


def _generate_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hack_generate", ROOT / "hack" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_files_match_the_models() -> None:
    stale = _generate_module().stale_files()
    assert stale == [], f"out of date, run `make crds`: {[str(p.relative_to(ROOT)) for p in stale]}"


def _nodes(schema: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, child in schema.get("properties", {}).items():
        yield from _nodes(child, f"{path}.{name}")
    if "items" in schema:
        yield from _nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _nodes(schema["additionalProperties"], f"{path}[*]")


@pytest.mark.parametrize("crd", build_crds(), ids=lambda c: c["spec"]["names"]["kind"])
def test_schema_is_structural(crd: dict[str, Any]) -> None:
    version = crd["spec"]["versions"][0]
    for path, node in _nodes(version["schema"]["openAPIV3Schema"], "root"):
        # Kubernetes allows an untyped node only with unknown fields preserved (any JSON value).
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields") is True, (
            f"{path} has no type"
        )
        assert not {"$ref", "anyOf", "oneOf", "allOf", "title"} & set(node), path
        assert node.get("default", 0) is not None, f"{path} has a null default"
        if node.get("type") == "object" and "properties" in node:
            assert "additionalProperties" not in node, path
        if node.get("x-kubernetes-list-type") == "map":
            for key in node["x-kubernetes-list-map-keys"]:
                assert key in node["items"].get("required", []), f"{path}: map key {key} must be required"
    assert version["subresources"] == {"status": {}}
    assert crd["spec"]["names"]["categories"] == ["mcp"]


def test_conditions_are_a_list_map_keyed_by_type() -> None:
    for crd in build_crds():
        status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
        conditions = status["properties"]["conditions"]
        assert conditions["x-kubernetes-list-type"] == "map"
        assert conditions["x-kubernetes-list-map-keys"] == ["type"]


def test_printer_columns_and_short_names() -> None:
    by_kind = {c["spec"]["names"]["kind"]: c for c in build_crds()}
    columns = {
        k: [col["name"] for col in c["spec"]["versions"][0]["additionalPrinterColumns"]]
        for k, c in by_kind.items()
    }
    assert columns["MCPServer"] == ["Phase", "Ready", "Replicas", "URL", "Age"]
    assert columns["MCPRemoteProxy"] == ["Phase", "Remote URL", "URL", "Ready", "Age"]
    assert columns["VirtualMCPServer"] == ["Phase", "Backends", "URL", "Ready", "Age"]
    assert columns["MCPGroup"] == ["Servers", "Proxies", "Phase", "Age"]
    assert columns["MCPToolConfig"] == columns["MCPExternalAuthConfig"] == ["Valid", "Age"]
    assert columns["VirtualMCPCompositeToolDefinition"] == ["Workflow", "Status", "Valid", "Age"]
    assert columns["MCPOIDCConfig"] == ["Source", "Valid", "Age"]  # ToolHive's columns
    assert columns["MCPServerEntry"] == ["Phase", "Transport", "Remote URL", "Group", "Age"]
    assert columns["MCPAuthzConfig"] == ["Valid", "Age"]
    assert columns["MCPTelemetryConfig"] == ["Endpoint", "Valid", "Tracing", "Age"]
    assert columns["EmbeddingServer"] == ["Phase", "Model", "Ready", "Replicas", "URL", "Age"]
    short = {k: c["spec"]["names"]["shortNames"] for k, c in by_kind.items()}
    assert short == {
        "MCPServer": ["mcps"],
        "MCPRemoteProxy": ["mcprp"],
        "VirtualMCPServer": ["vmcp"],
        "MCPGroup": ["mcpg"],
        "MCPToolConfig": ["mcptc"],
        "MCPExternalAuthConfig": ["mcpeac"],
        "MCPOIDCConfig": ["mcpoidc"],
        "MCPServerEntry": ["mcpentry"],
        "MCPAuthzConfig": ["authzcfg"],  # ToolHive's
        "MCPTelemetryConfig": ["mcpotel"],
        "VirtualMCPCompositeToolDefinition": ["vmcpctd", "compositetool"],
        "EmbeddingServer": ["emb", "embedding"],  # ToolHive's
    }


def test_defaults_and_enums_reach_the_schema() -> None:
    by_kind = {
        c["spec"]["names"]["kind"]: c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for c in build_crds()
    }
    server = by_kind["MCPServer"]["properties"]["spec"]
    assert server["required"] == ["image"]
    assert server["properties"]["transport"] == {
        **server["properties"]["transport"],
        "default": "stdio",
        "enum": ["stdio", "sse", "streamable-http"],
    }
    assert server["properties"]["proxyPort"]["default"] == 8080
    assert server["properties"]["proxyPort"]["maximum"] == 65535
    assert server["properties"]["podTemplateSpec"]["x-kubernetes-preserve-unknown-fields"] is True
    assert "Container image" in server["properties"]["image"]["description"]
    vmcp = by_kind["VirtualMCPServer"]["properties"]["spec"]["properties"]
    agg = vmcp["config"]["properties"]["aggregation"]
    assert agg["properties"]["conflictResolution"]["default"] == "prefix"
    assert (
        agg["properties"]["conflictResolutionConfig"]["properties"]["prefixFormat"]["default"]
        == "{workload}_"
    )
    assert vmcp["config"]["default"] == {} and agg["default"] == {}
    assert vmcp["serviceType"]["default"] == "ClusterIP"


def test_a_union_of_types_is_refused_at_generation_time() -> None:
    class Bad(CRDModel):
        value: int | str

    with pytest.raises(SchemaError, match=r"Bad\.value"):
        structural_schema(Bad)


def test_crds_command_prints_every_crd() -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        assert crds_main([]) == 0
    assert out.getvalue() == render_crds()
    docs = [d for d in yaml.safe_load_all(out.getvalue()) if d]
    assert [d["spec"]["names"]["kind"] for d in docs] == list(KINDS)
    out = io.StringIO()
    with redirect_stdout(out):
        assert crds_main(["--kind", "MCPGroup"]) == 0
    assert [d["metadata"]["name"] for d in yaml.safe_load_all(out.getvalue()) if d] == [
        "mcpgroups.mcp-operator.dev"
    ]


def _api_docs(path: Path) -> list[dict[str, Any]]:
    """The documents of an example that are of this API (examples also carry Secrets they need)."""
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    return [d for d in docs if str(d.get("apiVersion", "")).startswith("mcp-operator.dev/")]


def test_every_kind_has_an_example() -> None:
    kinds = {d["kind"] for f in EXAMPLES for d in _api_docs(f)}
    assert kinds == set(KINDS)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_parses_and_is_valid(path: Path) -> None:
    for doc in _api_docs(path):
        obj, problems = parse_and_validate(doc)
        assert obj is not None and problems == [], problems


@pytest.mark.parametrize("path", TOOLHIVE, ids=lambda p: p.name)
def test_toolhive_manifest_ports_by_changing_only_api_version(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    assert doc["apiVersion"] == "toolhive.stacklok.dev/v1alpha1"
    doc["apiVersion"] = "mcp-operator.dev/v1alpha1"
    obj, problems = parse_and_validate(doc)
    assert obj is not None and problems == [], problems
    # Nothing the user wrote is dropped: every field has a home in the model under the same name.
    assert carries(obj.to_json()["spec"], doc["spec"])


def test_toolhive_fixtures_cover_five_manifests() -> None:
    assert len(TOOLHIVE) >= 5


@pytest.mark.parametrize("crd", build_crds(), ids=lambda c: c["spec"]["names"]["kind"])
def test_v1beta1_is_stored_and_v1alpha1_served_with_the_same_schema(crd: dict[str, Any]) -> None:
    storage, older = crd["spec"]["versions"]
    assert (storage["name"], storage["served"], storage["storage"]) == ("v1beta1", True, True)
    assert (older["name"], older["served"], older["storage"], older["deprecated"]) == (
        "v1alpha1",
        True,
        False,
        True,
    )
    assert "use mcp-operator.dev/v1beta1" in older["deprecationWarning"]
    # One schema: the API server converts by rewriting apiVersion, no conversion webhook.
    for key in ("schema", "subresources", "additionalPrinterColumns"):
        assert older[key] == storage[key], key
    assert "conversion" not in crd["spec"]
    assert "&id" not in render_crd(crd)  # every version written out in full, no YAML aliases


@pytest.mark.parametrize("crd", build_crds(), ids=lambda c: c["spec"]["names"]["kind"])
def test_no_int_or_string_node_that_would_untype_server_side_apply(crd: dict[str, Any]) -> None:
    # Kubernetes 1.20 cannot build a server-side-apply type from a schema with x-kubernetes-int-or-string
    # and then merges each object of the kind as one value: list entries owned by another field manager
    # (the gateway's backend health) would be lost. Counts-or-percentages are "any value" instead.
    version = crd["spec"]["versions"][0]
    nodes = _nodes(version["schema"]["openAPIV3Schema"], "root")
    assert [path for path, node in nodes if "x-kubernetes-int-or-string" in node] == []
