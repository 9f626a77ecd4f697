"""``mcp-operator migrate``: ToolHive manifests rewritten for this API; what would be refused is
reported, never removed."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.migrate import migrate_object
from api.migrate_cli import main, migrate_documents


def toolhive(kind: str, spec: dict[str, Any], version: str = "v1beta1", **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"toolhive.stacklok.dev/{version}",
        "kind": kind,
        "metadata": {"name": "x", "namespace": "ns", **meta},
        "spec": spec,
    }


def test_only_the_group_changes_and_the_version_stays() -> None:
    migration = migrate_object(toolhive("MCPServer", {"image": "i", "transport": "stdio"}, "v1alpha1"))
    assert migration is not None
    assert migration.obj == {
        **toolhive("MCPServer", {"image": "i", "transport": "stdio"}),
        "apiVersion": "mcp-operator.dev/v1alpha1",
    }
    assert migration.refused == []


def test_earlier_field_names_move_to_the_current_ones() -> None:
    migration = migrate_object(
        toolhive("MCPServer", {"image": "i", "transport": "sse", "port": 9090, "targetPort": 3000})
    )
    assert migration is not None
    assert migration.obj["spec"] == {"image": "i", "transport": "sse", "proxyPort": 9090, "mcpPort": 3000}
    assert "spec.port -> spec.proxyPort" in migration.changes
    vmcp = migrate_object(
        toolhive(
            "VirtualMCPServer",
            {
                "groupRef": {"name": "g"},
                "incomingAuth": {"type": "anonymous"},
                "aggregation": {"conflictResolution": "manual"},
                "compositeToolRefs": [{"name": "deploy-app"}],
            },
        )
    )
    assert vmcp is not None and vmcp.refused == []
    assert vmcp.obj["spec"]["config"] == {
        "aggregation": {"conflictResolution": "manual"},
        "compositeToolRefs": [{"name": "deploy-app"}],
    }
    assert "spec.compositeToolRefs -> spec.config.compositeToolRefs" in vmcp.changes


def test_a_rename_that_would_overwrite_a_different_value_is_left_and_refused() -> None:
    migration = migrate_object(toolhive("MCPServer", {"image": "i", "port": 9090, "proxyPort": 8080}))
    assert migration is not None
    assert migration.obj["spec"] == {"image": "i", "port": 9090, "proxyPort": 8080}
    assert [r.split(":")[0] for r in migration.refused] == ["spec.port"]


def test_security_fields_are_reported_and_kept_never_dropped() -> None:
    auth_server = {"issuer": "https://auth.example.com", "signingKeySecretRefs": [{"name": "k"}]}
    spec = {"groupRef": {"name": "g"}, "incomingAuth": {"type": "anonymous"}, "authServerConfig": auth_server}
    migration = migrate_object(toolhive("VirtualMCPServer", spec))
    assert migration is not None
    assert migration.obj["spec"]["authServerConfig"] == auth_server
    assert migration.refused[0].startswith("spec.authServerConfig: is not supported yet")


def test_what_the_api_server_wrote_is_dropped() -> None:
    obj = toolhive(
        "MCPGroup",
        {},
        uid="u",
        resourceVersion="7",
        generation=2,
        finalizers=["mcpgroup.toolhive.stacklok.dev/finalizer", "example.com/keep"],
        annotations={"kubectl.kubernetes.io/last-applied-configuration": "{}", "team": "a"},
    )
    obj["status"] = {"phase": "Ready"}
    migration = migrate_object(obj)
    assert migration is not None
    assert migration.obj["metadata"] == {
        "name": "x",
        "namespace": "ns",
        "finalizers": ["example.com/keep"],
        "annotations": {"team": "a"},
    }
    assert "status" not in migration.obj


def test_objects_of_other_groups_pass_through() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "v"}}
    assert migrate_object(secret) is None
    report = io.StringIO()
    out, refused = migrate_documents([secret], report)
    assert out == [secret] and refused == 0 and report.getvalue() == ""


def test_the_command_converts_a_list_and_exits_1_naming_what_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = [
        toolhive("MCPServer", {"image": "i"}),
        toolhive(
            "MCPServer", {"image": "i", "authServerRef": {"kind": "MCPExternalAuthConfig", "name": "a"}}
        ),
        toolhive("MCPRegistry", {"source": "s"}),
    ]
    path = tmp_path / "toolhive.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))
    assert main([str(path)]) == 1
    captured = capsys.readouterr()
    docs = list(yaml.safe_load_all(captured.out))
    assert [d["apiVersion"] for d in docs] == ["mcp-operator.dev/v1beta1"] * 3
    assert (
        "MCPServer/x: ok (apiVersion toolhive.stacklok.dev/v1beta1 -> mcp-operator.dev/v1beta1)"
        in captured.err
    )
    assert "  spec.authServerRef: is not supported yet" in captured.err
    assert "  kind: 'MCPRegistry' is not a kind of this API" in captured.err
    assert "2 object(s) would be refused" in captured.err


def test_the_command_exits_0_when_everything_ports_and_2_when_it_cannot_read(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(yaml.safe_dump(toolhive("MCPGroup", {})))
    assert main([str(path)]) == 0
    assert main([str(tmp_path / "missing.yaml")]) == 2
