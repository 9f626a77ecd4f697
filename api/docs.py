"""``docs/api.md``: the CRD reference, generated from the same structural schemas as the CRDs."""

from __future__ import annotations

import json
from typing import Any

from api.crds import build_crd
from api.registry import CATEGORY, KINDS, KindInfo

__all__ = ["render_api_docs"]

_INTRO = f"""# API reference: `{next(iter(KINDS.values())).api_version}`

Generated from the models in `api/` by `hack/generate.py` (`make crds`); do not edit by hand.
Every kind is namespaced and in the category `{CATEGORY}`, so `kubectl get {CATEGORY}` lists them all;
`kubectl explain <kind>.spec` shows the same descriptions.
"""


def _type_of(schema: dict[str, Any]) -> str:
    kind = schema.get("type", "object")
    if schema.get("x-kubernetes-preserve-unknown-fields") and "properties" not in schema:
        return "object (free-form)"
    if kind == "array":
        item = _type_of(schema["items"])
        list_type = schema.get("x-kubernetes-list-type")
        if list_type == "map":
            return f"list of {item}, keyed by {', '.join(schema['x-kubernetes-list-map-keys'])}"
        return f"list of {item}"
    if kind == "object" and "additionalProperties" in schema:
        return f"map of {_type_of(schema['additionalProperties'])}"
    if "enum" in schema:
        return " | ".join(f"`{v}`" for v in schema["enum"])
    return str(kind)


def _constraints(schema: dict[str, Any]) -> str:
    parts = []
    if "minimum" in schema or "maximum" in schema:
        parts.append(f"{schema.get('minimum', '')}..{schema.get('maximum', '')}")
    if "minLength" in schema:
        parts.append(f"min length {schema['minLength']}")
    if "maxLength" in schema:
        parts.append(f"max length {schema['maxLength']}")
    if "pattern" in schema:
        parts.append(f"pattern `{schema['pattern']}`")
    return "; ".join(parts)


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def _rows(schema: dict[str, Any], prefix: str) -> list[str]:
    rows: list[str] = []
    for name, child in schema.get("properties", {}).items():
        path = f"{prefix}.{name}"
        is_required = name in schema.get("required", [])
        default = json.dumps(child["default"]) if "default" in child else ""
        notes = _constraints(child)
        description = child.get("description", "") + (f" ({notes})" if notes else "")
        rows.append(
            f"| `{path}`{' (required)' if is_required else ''} | {_escape(_type_of(child))} "
            f"| {f'`{default}`' if default else ''} | {_escape(description)} |"
        )
        nested = child
        suffix = ""
        if child.get("type") == "array":
            nested, suffix = child["items"], "[]"
        elif "additionalProperties" in child:
            nested, suffix = child["additionalProperties"], "[*]"
        if "properties" in nested:
            rows.extend(_rows(nested, path + suffix))
    return rows


def _kind_section(info: KindInfo) -> str:
    crd = build_crd(info)
    version = crd["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    columns = ", ".join(c["name"] for c in version["additionalPrinterColumns"])
    lines = [
        f"## {info.kind}",
        "",
        schema.get("description", ""),
        "",
        f"- Resource: `{info.plural}` (short names: {', '.join(f'`{s}`' for s in info.short_names)})",
        f"- `kubectl get` columns: {columns}",
        "",
    ]
    for part in ("spec", "status"):
        sub = schema["properties"][part]
        lines += [
            f"### {info.kind} `{part}`",
            "",
            "| Field | Type | Default | Description |",
            "|---|---|---|---|",
        ]
        lines += _rows(sub, part)
        lines.append("")
    return "\n".join(lines)


def render_api_docs() -> str:
    """The whole of ``docs/api.md``."""
    toc = "\n".join(f"- [{k}](#{k.lower()})" for k in KINDS)
    return _INTRO + "\n" + toc + "\n\n" + "\n".join(_kind_section(i) for i in KINDS.values())
