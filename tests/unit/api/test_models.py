"""The typed models read what users write and what the API server returns."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

import api.conditions
import api.crds
import api.problems
import api.registry
import api.validation
from api.conditions import find_condition
from api.mcpgroup import MCPGroup
from api.mcpserver import MCPServer
from api.mcptoolconfig import MCPToolConfig
from api.registry import KINDS, kind_info, model_for


def test_mcpserver_defaults_follow_toolhive() -> None:
    server = MCPServer.from_dict({"kind": "MCPServer", "metadata": {"name": "f"}, "spec": {"image": "img"}})
    assert server.spec.transport == "stdio"
    assert server.spec.proxy_port == 8080
    assert server.spec.proxy_mode == "streamable-http"
    assert server.status.conditions == []
    assert server.api_version == "mcp-operator.dev/v1beta1"


def test_camel_case_on_the_wire_and_snake_case_in_python() -> None:
    server = MCPServer.from_dict(
        {
            "metadata": {"name": "f", "resourceVersion": "7"},
            "spec": {
                "image": "img",
                "transport": "sse",
                "mcpPort": 9000,
                "secrets": [{"name": "s", "key": "api-token", "targetEnvName": "TOKEN"}],
                "toolConfigRef": {"name": "tc"},
            },
            "status": {
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "Ready",
                        "lastTransitionTime": "2026-01-01T00:00:00Z",
                    }
                ]
            },
        }
    )
    assert server.spec.mcp_port == 9000
    assert server.metadata.resource_version == "7"
    assert server.spec.secrets is not None and server.spec.secrets[0].env_name == "TOKEN"
    assert server.spec.tool_config_ref is not None and server.spec.tool_config_ref.name == "tc"
    ready = find_condition(server.status.conditions, "Ready")
    assert ready is not None and ready.status == "True"
    wire = server.to_json()
    assert wire["spec"]["mcpPort"] == 9000
    assert wire["spec"]["secrets"][0]["targetEnvName"] == "TOKEN"
    assert "resources" not in wire["spec"]


def test_secret_without_target_env_name_uses_the_key() -> None:
    server = MCPServer.from_dict({"spec": {"image": "i", "secrets": [{"name": "s", "key": "TOKEN"}]}})
    assert server.spec.secrets is not None and server.spec.secrets[0].env_name == "TOKEN"


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({}, "image"),
        ({"image": "i", "transport": "tcp"}, "transport"),
        ({"image": "i", "proxyPort": 0}, "proxyPort"),
        ({"image": "i", "replicas": -1}, "replicas"),
    ],
)
def test_invalid_spec_fails_to_parse_naming_the_field(spec: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        MCPServer.from_dict({"spec": spec})
    assert field in str(err.value)


def test_group_and_toolconfig_parse_with_empty_spec() -> None:
    group = MCPGroup.from_dict({"metadata": {"name": "g"}})
    assert group.status.server_count == 0 and group.status.servers == []
    tc = MCPToolConfig.from_dict(
        {"spec": {"toolsFilter": ["fetch"], "toolsOverride": {"fetch": {"name": "get_url"}}}}
    )
    assert tc.spec.tools_override is not None and tc.spec.tools_override["fetch"].name == "get_url"


def test_registry_names_every_kind() -> None:
    info = kind_info("MCPServer")
    assert info.plural == "mcpservers" and info.crd_name == "mcpservers.mcp-operator.dev"
    assert "mcps" in info.short_names
    assert model_for("MCPGroup") is MCPGroup
    for kind, entry in KINDS.items():
        assert kind == entry.model.KIND
    with pytest.raises(KeyError, match="known kinds"):
        kind_info("Nope")


def test_public_interface_is_pinned() -> None:
    """The names the reconcilers and the gateway import; renaming one is an API change."""
    assert set(api.validation.__all__) == {
        "Problem",
        "format_problems",
        "parse_and_validate",
        "problems_from_validation_error",
        "validate",
    }
    assert set(api.problems.__all__) == {
        "MAX_MESSAGE",
        "Problem",
        "format_problems",
        "problems_from_validation_error",
    }
    assert {"ACCEPTED", "READY", "RESOLVED_REFS", "Condition", "Conditions", "find_condition"} <= set(
        api.conditions.__all__
    )
    assert {"KINDS", "KindInfo", "kind_info", "model_for", "CATEGORY"} <= set(api.registry.__all__)
    assert {"build_crd", "build_crds", "render_crds"} <= set(api.crds.__all__)
    assert list(KINDS) == [
        "MCPServer",
        "MCPRemoteProxy",
        "VirtualMCPServer",
        "MCPGroup",
        "MCPToolConfig",
        "MCPExternalAuthConfig",
        "MCPOIDCConfig",
        "MCPServerEntry",
        "MCPAuthzConfig",
        "MCPTelemetryConfig",
        "VirtualMCPCompositeToolDefinition",
        "EmbeddingServer",
    ]
