"""Reserved fields: every ToolHive field is declared by our schema, and the ones not implemented yet are
refused when set (the pure rule) and kept by the schema (never pruned)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from api.parity import field_status, parse_field_list, spec_schema
from api.registry import KINDS
from api.reserved import (
    RESERVED_FIELDS,
    ReservedField,
    ReservedFieldError,
    declare_reserved,
    reserved_problems,
)
from api.validation import parse_and_validate

ROOT = Path(__file__).resolve().parents[3]
TOOLHIVE_FIELDS = ROOT / "tests" / "fixtures" / "toolhive-v1beta1-fields.txt"
GV = "mcp-operator.dev/v1alpha1"


def test_every_toolhive_field_is_implemented_or_reserved() -> None:
    fields = parse_field_list(TOOLHIVE_FIELDS.read_text())
    assert len(fields) > 800
    undeclared = [f"{kind} {path}" for kind, path in fields if field_status(kind, path) == "undeclared"]
    assert undeclared == []


@pytest.mark.parametrize(
    ("kind", "spec", "field"),
    [
        ("MCPExternalAuthConfig", {"type": "unauthenticated", "obo": {"audience": "a"}}, "spec.obo"),
        (
            "MCPExternalAuthConfig",
            {
                "type": "embeddedAuthServer",
                "embeddedAuthServer": {
                    "issuer": "https://auth.example.com",
                    "upstreamProviders": [
                        {
                            "name": "idp",
                            "type": "oidc",
                            "oidcConfig": {"issuerUrl": "https://i", "clientId": "c"},
                        }
                    ],
                    "delegateClients": [{"clientId": "d"}],
                },
            },
            "spec.embeddedAuthServer.delegateClients",
        ),
        ("MCPServer", {"image": "i", "webhookConfigRef": {"name": "hooks"}}, "spec.webhookConfigRef"),
        ("MCPServer", {"image": "i", "telemetry": {"prometheus": {"enabled": True}}}, "spec.telemetry"),
        ("MCPServer", {"image": "i", "tools": ["fetch"]}, "spec.tools"),
        ("MCPServer", {"image": "i", "targetPort": 8080}, "spec.targetPort"),
        (
            "MCPRemoteProxy",
            {"remoteUrl": "https://a.example", "port": 8080},
            "spec.port",
        ),
        (
            "VirtualMCPServer",
            {
                "groupRef": {"name": "g"},
                "incomingAuth": {"type": "anonymous"},
                "authServerConfig": {"issuer": "https://auth.example"},
            },
            "spec.authServerConfig",
        ),
        (
            "VirtualMCPServer",
            {
                "groupRef": {"name": "g"},
                "incomingAuth": {"type": "anonymous"},
                "config": {"operational": {"failureHandling": {"statusReportingInterval": "30s"}}},
            },
            "spec.config.operational.failureHandling.statusReportingInterval",
        ),
        ("MCPExternalAuthConfig", {"type": "unauthenticated", "awsSts": {"region": "eu"}}, "spec.awsSts"),
    ],
)
def test_a_reserved_field_refuses_the_object_naming_it(kind: str, spec: dict[str, Any], field: str) -> None:
    obj, problems = parse_and_validate(
        {"apiVersion": GV, "kind": kind, "metadata": {"name": "x"}, "spec": spec}
    )
    refusals = [p for p in problems if p.field == field]
    assert len(refusals) == 1, problems
    assert refusals[0].message.startswith("is not supported yet; remove it")
    assert obj is not None  # it parses: the refusal is the reserved field, not a broken object


def test_the_refusal_says_what_to_use_instead() -> None:
    spec = {"image": "i", "tools": ["fetch"]}
    _, problems = parse_and_validate(
        {"apiVersion": GV, "kind": "MCPServer", "metadata": {"name": "x"}, "spec": spec}
    )
    assert str(problems[0]) == (
        "spec.tools: is not supported yet; remove it, or reference an MCPToolConfig with "
        "spec.toolConfigRef (ToolHive: an allow-list of tools (earlier releases))"
    )


FIELD = ReservedField("spec.block.flag", "boolean", "a flag", inert=("off",))


@pytest.mark.parametrize("value", [None, False, "", [], "off"])
def test_unset_and_inert_values_are_accepted(value: Any) -> None:
    assert reserved_problems({"spec": {"block": {"flag": value}}}, [FIELD]) == []


@pytest.mark.parametrize("value", [True, 0, "on", ["x"], {}, {"a": 1}])
def test_any_other_value_is_refused(value: Any) -> None:
    assert [p.field for p in reserved_problems({"spec": {"block": {"flag": value}}}, [FIELD])] == [
        "spec.block.flag"
    ]


@pytest.mark.parametrize("data", [{}, {"spec": None}, {"spec": {"block": "text"}}, {"spec": {"block": {}}}])
def test_an_absent_field_or_a_parent_of_another_shape_is_not_refused(data: dict[str, Any]) -> None:
    assert reserved_problems(data, [FIELD]) == []


def test_a_reserved_field_is_declared_free_form_with_its_description() -> None:
    spec = spec_schema("VirtualMCPServer")
    authz = spec["properties"]["authServerConfig"]
    assert authz["type"] == "object" and authz["x-kubernetes-preserve-unknown-fields"] is True
    assert authz["description"].startswith("Not supported yet: an object that sets it is refused")
    embedded = spec_schema("MCPExternalAuthConfig")["properties"]["embeddedAuthServer"]
    uris = embedded["properties"]["forceConfidentialRedirectUris"]
    assert uris == {**uris, "type": "array", "items": {"type": "string"}}


def test_declaring_a_field_under_a_missing_parent_or_over_an_implemented_one_fails() -> None:
    schema = {
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {"a": {"type": "string"}}}},
    }
    with pytest.raises(ReservedFieldError, match=r"spec\.b\.c: b is not an object"):
        declare_reserved(schema, [ReservedField("spec.b.c", "string", "x")])
    with pytest.raises(ReservedFieldError, match=r"spec\.a is implemented"):
        declare_reserved(schema, [ReservedField("spec.a", "string", "x")])


def test_every_kind_has_its_list_and_no_path_repeats() -> None:
    assert set(RESERVED_FIELDS) == set(KINDS)
    for kind, fields in RESERVED_FIELDS.items():
        paths = [f.path for f in fields]
        assert len(paths) == len(set(paths)), kind
        assert all(p.startswith("spec.") for p in paths), kind


@pytest.mark.parametrize("type_", ["awsSts", "upstreamInject", "obo", "xaa"])
def test_toolhives_other_auth_types_are_in_the_schema_and_refused_naming_the_field(type_: str) -> None:
    enum = spec_schema("MCPExternalAuthConfig")["properties"]["type"]["enum"]
    assert type_ in enum  # the API server stores it (no bare 422); the operator refuses it
    obj, problems = parse_and_validate(
        {
            "apiVersion": GV,
            "kind": "MCPExternalAuthConfig",
            "metadata": {"name": "x"},
            "spec": {"type": type_},
        }
    )
    assert obj is not None
    assert [p.field for p in problems] == ["spec.type"]
    assert problems[0].message.startswith(f"{type_} is not supported yet; use one of tokenExchange, ")
