"""CustomResourceDefinitions generated from the models (never written by hand).

``build_crd(info)`` returns one CRD as a dict; ``build_crds()`` all of them in registry order;
``render_crds()`` / ``render_crd()`` the YAML that ``mcp-operator crds`` prints and ``manifests/crds/``
holds.
"""

from __future__ import annotations

from typing import Any

import yaml

from api.base import OLDER_VERSIONS
from api.registry import CATEGORY, KINDS, KindInfo
from api.reserved import declare_reserved
from api.schema import structural_schema

__all__ = ["GENERATED_HEADER", "build_crd", "build_crds", "crd_file_name", "render_crd", "render_crds"]

GENERATED_HEADER = "# Generated from the models in api/ by hack/generate.py (make crds). Do not edit.\n"


def _root_schema(info: KindInfo) -> dict[str, Any]:
    schema = declare_reserved(structural_schema(info.model), info.reserved)
    props = schema["properties"]
    props["apiVersion"] = {
        "type": "string",
        "description": "APIVersion defines the versioned schema of this representation of an object.",
    }
    props["kind"] = {
        "type": "string",
        "description": "Kind is a string value representing the REST resource.",
    }
    props["metadata"] = {"type": "object"}
    schema["required"] = [name for name in schema.get("required", []) if name == "spec"]
    if not schema["required"]:
        del schema["required"]
    return schema


def _deprecated(info: KindInfo, version: str) -> dict[str, Any]:
    return {
        "deprecated": True,
        "deprecationWarning": f"{info.group}/{version} {info.kind} is deprecated; use {info.api_version}",
    }


def build_crd(info: KindInfo) -> dict[str, Any]:
    """The ``apiextensions.k8s.io/v1`` CustomResourceDefinition of one kind: the storage version and the
    older ones, all served with one schema (so no conversion webhook is needed)."""
    schema = _root_schema(info)
    columns = [
        {
            "name": c.name,
            "type": c.type,
            "jsonPath": c.json_path,
            **({"description": c.description} if c.description else {}),
            **({"priority": c.priority} if c.priority else {}),
        }
        for c in info.printer_columns
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": info.crd_name,
            "labels": {"app.kubernetes.io/part-of": "mcp-operator"},
        },
        "spec": {
            "group": info.group,
            "names": {
                "kind": info.kind,
                "listKind": info.list_kind,
                "plural": info.plural,
                "singular": info.singular,
                "shortNames": list(info.short_names),
                "categories": [CATEGORY],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": version == info.version,
                    **({} if version == info.version else _deprecated(info, version)),
                    "schema": {"openAPIV3Schema": schema},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                }
                for version in (info.version, *OLDER_VERSIONS)
            ],
        },
    }


def build_crds() -> list[dict[str, Any]]:
    """Every CRD of the API group, in registry order."""
    return [build_crd(info) for info in KINDS.values()]


def crd_file_name(info: KindInfo) -> str:
    """``<group>_<plural>.yaml``, the file in ``manifests/crds/``."""
    return f"{info.group}_{info.plural}.yaml"


class _NoAliasDumper(yaml.SafeDumper):
    """Writes a node shared by several versions (their one schema) out in full each time, not as a YAML
    alias: plain to read, and what every consumer of the manifests expects."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render_crd(crd: dict[str, Any]) -> str:
    """One CRD as a YAML document (keys in a stable, readable order)."""
    return yaml.dump(crd, Dumper=_NoAliasDumper, sort_keys=False, width=100, allow_unicode=True)


def render_crds() -> str:
    """Every CRD as one multi-document YAML stream."""
    return GENERATED_HEADER + "".join(f"---\n{render_crd(crd)}" for crd in build_crds())
