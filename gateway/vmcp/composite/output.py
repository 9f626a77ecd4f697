"""A composite tool's result: a step's output as templates see it, and the ``output`` block's values.

Pure. A step's output is its tool result's ``structuredContent`` when that is an object, else its content
as a map: ``text`` (then ``text_1``, ``text_2``... for further text items), ``image_0``... (the base64
data) and ``resource`` (``resource_1``...: an embedded resource's text or blob), as ToolHive does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import mcp_types as types

from api.composite import OutputConfig, OutputProperty
from api.workflow_templates import NO_VALUE, TemplateError, parse_template

__all__ = ["OutputError", "build_output", "coerce_text", "step_output"]


class OutputError(ValueError):
    """The ``output`` block could not be computed (the message names the property)."""


def step_output(result: types.CallToolResult) -> dict[str, Any]:
    """The output of a step whose tool answered ``result`` (see the module docstring)."""
    if isinstance(result.structured_content, dict):
        return dict(result.structured_content)
    output: dict[str, Any] = {}
    counts = {"text": 0, "image": 0, "resource": 0}
    for item in result.content:
        if isinstance(item, types.TextContent):
            key = "text" if counts["text"] == 0 else f"text_{counts['text']}"
            output[key], counts["text"] = item.text, counts["text"] + 1
        elif isinstance(item, types.ImageContent):
            output[f"image_{counts['image']}"], counts["image"] = item.data, counts["image"] + 1
        elif isinstance(item, types.EmbeddedResource):
            key = "resource" if counts["resource"] == 0 else f"resource_{counts['resource']}"
            resource = item.resource
            value = resource.text if isinstance(resource, types.TextResourceContents) else resource.blob
            output[key], counts["resource"] = value, counts["resource"] + 1
    return output


def coerce_text(text: str, json_type: str) -> Any:
    """``text`` as a value of the JSON Schema type ``json_type``; raises ValueError when it is not one."""
    if json_type == "string":
        return text
    if json_type == "integer":
        return int(text.strip())
    if json_type == "number":
        return float(text.strip())
    if json_type == "boolean":
        lowered = text.strip().lower()
        if lowered in ("true", "1", "t"):
            return True
        if lowered in ("false", "0", "f"):
            return False
        raise ValueError(f"{text!r} is not a boolean")
    value = json.loads(text)
    if json_type == "object" and not isinstance(value, dict):
        raise ValueError(f"{text!r} is not a JSON object")
    if json_type == "array" and not isinstance(value, list):
        raise ValueError(f"{text!r} is not a JSON array")
    return value


def build_output(config: OutputConfig, context: Mapping[str, Any]) -> dict[str, Any]:
    """The structured result the ``output`` block describes, from the template context."""
    output = {name: _property(name, prop, context) for name, prop in sorted(config.properties.items())}
    for name in config.required or []:
        if output.get(name) is None:
            raise OutputError(f"output property {name!r} is required but has no value")
    return output


def _property(name: str, prop: OutputProperty, context: Mapping[str, Any]) -> Any:
    if prop.value is None:
        nested = prop.properties or {}
        return {key: _property(f"{name}.{key}", child, context) for key, child in sorted(nested.items())}
    try:
        text = parse_template(prop.value).render(context)
        if text == NO_VALUE:
            raise ValueError("the template has no value")
        return coerce_text(text, prop.type)
    except (TemplateError, ValueError) as exc:
        if prop.default is not None:
            return prop.default
        raise OutputError(f"output property {name!r}: {exc}") from None
