"""Turn a pydantic model into a structural OpenAPI v3 schema, as a CustomResourceDefinition needs it.

pydantic's JSON Schema uses ``$ref``/``$defs``, ``anyOf [X, null]`` for optional fields, titles and
``additionalProperties: false``; a Kubernetes structural schema allows none of those. This module inlines
references, drops ``null`` alternatives (an unset optional field is simply absent), keeps what the API
server enforces (types, enums, patterns, bounds, defaults, required lists, descriptions, ``x-kubernetes-*``
extensions) and refuses anything it cannot express, so a non-structural CRD is caught at generation
time rather than by the API server.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = ["SchemaError", "structural_schema"]

# Keys copied verbatim from a pydantic JSON schema node to the structural schema.
_KEPT = (
    "type",
    "description",
    "enum",
    "pattern",
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "uniqueItems",
    "nullable",
)
_DROPPED = (
    "$defs",
    "title",
    "additionalProperties",
    "properties",
    "items",
    "required",
    "anyOf",
    "$ref",
    "const",
)


class SchemaError(ValueError):
    """The model cannot be expressed as a structural schema; the message names the JSON path."""


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of ``model`` (camelCase property names)."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs: dict[str, Any] = raw.get("$defs", {})
    return _convert(raw, defs, model.__name__)


def _resolve(node: dict[str, Any], defs: dict[str, Any], path: str) -> dict[str, Any]:
    """Inline a ``$ref`` (keys beside it, such as the field's description, win) and drop ``null``."""
    while True:
        if "$ref" in node:
            target = defs[node["$ref"].rsplit("/", 1)[-1]]
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            node = {**target, **siblings}
            continue
        if node.get("x-kubernetes-preserve-unknown-fields") and "anyOf" in node:
            # A union kept as any JSON value (the operator checks it). Not x-kubernetes-int-or-string:
            # Kubernetes 1.20's server-side apply cannot type a schema that has one, and would merge
            # every object of the kind as one opaque value.
            return {k: v for k, v in node.items() if k not in ("anyOf", "default")}
        if "anyOf" in node:
            options = [o for o in node["anyOf"] if o.get("type") != "null"]
            if len(options) != 1:
                raise SchemaError(f"{path}: a union of several types is not a structural schema")
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            if rest.get("default", 0) is None:
                del rest["default"]
            node = {**options[0], **rest}
            continue
        return node


def _convert(node: dict[str, Any], defs: dict[str, Any], path: str) -> dict[str, Any]:
    node = _resolve(node, defs, path)
    out: dict[str, Any] = {k: node[k] for k in _KEPT if k in node}
    if "const" in node:
        out["enum"] = [node["const"]]
    # An empty-string default is stored as null by Kubernetes v1.20, which then rejects the CRD; the
    # model's own default ("") gives the same value when the field is absent.
    if "default" in node and node["default"] not in (None, ""):
        out["default"] = node["default"]
    out.update({k: v for k, v in node.items() if k.startswith("x-kubernetes-")})
    if "description" in out:
        out["description"] = " ".join(str(out["description"]).split()).replace("``", "`")
    if "enum" in out and "type" not in out:
        out["type"] = _enum_type(out["enum"], path)

    if out.get("x-kubernetes-preserve-unknown-fields"):
        if "type" in node or "properties" in node or "additionalProperties" in node:
            out["type"] = "object"
        # else: any JSON value (a number, a string, an object...), which a structural schema allows
        # only untyped and with unknown fields preserved.
        return out
    kind = out.get("type")
    if kind is None:
        raise SchemaError(f"{path}: every node of a structural schema needs a type")
    if kind == "object":
        if "properties" in node:
            out["properties"] = {
                name: _convert(child, defs, f"{path}.{name}") for name, child in node["properties"].items()
            }
            if node.get("required"):
                out["required"] = list(node["required"])
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            if "properties" in node:
                raise SchemaError(f"{path}: properties and additionalProperties cannot be combined")
            out["additionalProperties"] = _convert(extra, defs, f"{path}[*]")
        elif extra is True or ("properties" not in node and extra is None):
            out["x-kubernetes-preserve-unknown-fields"] = True
    elif kind == "array":
        if "items" not in node:
            raise SchemaError(f"{path}: an array needs an item type")
        out["items"] = _convert(node["items"], defs, f"{path}[]")
    elif kind not in ("string", "integer", "number", "boolean"):
        raise SchemaError(f"{path}: unsupported type {kind!r}")
    unknown = set(node) - set(_KEPT) - set(_DROPPED) - {"default"}
    unknown = {k for k in unknown if not k.startswith("x-kubernetes-")}
    if unknown:
        raise SchemaError(f"{path}: schema keywords {sorted(unknown)} have no structural equivalent")
    return out


def _enum_type(values: list[Any], path: str) -> str:
    kinds = {type(v) for v in values}
    if kinds == {str}:
        return "string"
    if kinds <= {int}:
        return "integer"
    if kinds == {bool}:
        return "boolean"
    raise SchemaError(f"{path}: enum values {values!r} mix types")
