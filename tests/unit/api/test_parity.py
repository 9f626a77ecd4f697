"""The ToolHive parity tables: each ToolHive field's treatment comes from the models and the reserved
list, so the docs change when a field is implemented or reserved."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.parity import (
    TOOLHIVE_KINDS,
    field_status,
    parse_field_list,
    render_not_porting,
    render_parity_tables,
    with_parity_tables,
)
from api.registry import KINDS

ROOT = Path(__file__).resolve().parents[3]
FIELDS = parse_field_list((ROOT / "tests" / "fixtures" / "toolhive-v1beta1-fields.txt").read_text())


@pytest.mark.parametrize(
    ("kind", "path", "status"),
    [
        ("MCPServer", "spec.endpointPrefix", "supported"),
        ("MCPRemoteProxy", "spec.trustProxyHeaders", "supported"),
        ("VirtualMCPServer", "spec.config.operational.logLevel", "supported"),
        ("MCPServer", "spec.resources", "different"),
        ("MCPServer", "spec.authServerRef", "refused"),
        ("VirtualMCPServer", "spec.authServerConfig.cimd", "refused"),  # below a refused field
        ("MCPServer", "spec.noSuchField", "undeclared"),
    ],
)
def test_field_status(kind: str, path: str, status: str) -> None:
    assert field_status(kind, path) == status


def test_every_kind_here_is_a_toolhive_kind() -> None:
    assert set(KINDS) <= set(TOOLHIVE_KINDS)
    assert all(TOOLHIVE_KINDS[k] for k in TOOLHIVE_KINDS if k not in KINDS), (
        "a kind not provided needs a reason"
    )


def test_tables_list_refused_fields_with_their_meaning_and_skip_what_repeats_a_parent() -> None:
    text = render_parity_tables(FIELDS)
    assert "| `MCPRegistry` | not provided: a registry API server of MCP server entries |" in text
    assert "| `EmbeddingServer` | provided |" in text
    assert "| `spec.authServerRef` | refused | an embedded OAuth authorization server |" in text
    assert "| `spec.endpointPrefix` | supported |" in text
    assert "spec.authServerConfig.cimd" not in text  # its parent's row says it all
    assert "| `spec.config.operational.failureHandling.statusReportingInterval` | refused |" in text


def test_generated_sections_replace_only_what_is_between_their_markers() -> None:
    doc = "# Title\n\n" + render_parity_tables([]) + "\n\nhand-written text\n"
    updated = with_parity_tables(doc, [("MCPServer", "spec.image")])
    assert updated.startswith("# Title\n") and updated.endswith("\n\nhand-written text\n")
    assert "| `spec.image` | supported |" in updated
    with pytest.raises(ValueError, match="lacks the markers"):
        with_parity_tables("no markers", [])


def test_the_not_porting_list_reports_the_share() -> None:
    text = render_not_porting([{"object": "examples/a.yaml MCPServer/a", "reason": "x | y"}], total=4)
    assert "3 of the 4 objects ToolHive accepts (75.0%) port by changing only the API group" in text
    assert "| `examples/a.yaml MCPServer/a` | x / y |" in text


def test_objects_toolhive_refuses_too_are_counted_apart_with_its_rule() -> None:
    refused = [{"object": "docs/b.md MCPServer/b", "toolhive": "its CRD requires spec.image"}]
    text = render_not_porting([{"object": "examples/a.yaml MCPServer/a", "reason": "x"}], 5, refused)
    assert "3 of the 4 objects ToolHive accepts (75.0%) port" in text
    assert "The remaining 1 of the 5 objects are refused by ToolHive itself" in text
    assert "| `docs/b.md MCPServer/b` | its CRD requires spec.image |" in text
