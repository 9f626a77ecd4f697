"""Hybrid ranking of tools for the optimizer's ``find_tool``: semantic matches (cosine distance between the
query's embedding and each tool's) and keyword matches (:mod:`gateway.vmcp.tool_search`), combined as
ToolHive's optimizer combines them. Pure logic, no I/O.

- ``hybridSearchSemanticRatio`` is the semantic share of the answer: of ``maxToolsToReturn`` places,
  ``round(max x ratio)`` go to the nearest tools by meaning (:func:`semantic_share`), the rest to the
  best by keywords (0.0: keywords only; 1.0: meaning only).
- ``semanticDistanceThreshold`` cuts the semantic side only: a tool whose cosine distance (``1 - cosine
  similarity``: 0 identical, 1 unrelated, 2 opposite) is above it is no semantic match; the keywords may
  still find it.
- The answer lists the semantic matches first, nearest first, then the keyword matches not already
  listed, best first, at most ``maxToolsToReturn`` in all (:func:`merge`).

A tool's text for embedding is its name and description, as ToolHive embeds it (:func:`tool_text`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from mcp_types import Tool

__all__ = ["Vector", "cosine_distance", "merge", "nearest", "semantic_share", "tool_text", "unit"]

Vector = tuple[float, ...]


def tool_text(tool: Tool) -> str:
    """What is embedded of a tool."""
    return f"name: {tool.name} description: {tool.description or ''}"


def semantic_share(limit: int, ratio: float) -> int:
    """Places of ``limit`` that go to semantic matches (half up, as Go's ``math.Round``)."""
    return min(limit, max(0, math.floor(limit * ratio + 0.5)))


def unit(vector: Sequence[float]) -> Vector:
    """``vector`` scaled to length 1 (all zeros stays all zeros: it is near nothing)."""
    norm = math.sqrt(sum(x * x for x in vector))
    return tuple(x / norm for x in vector) if norm else tuple(0.0 for _ in vector)


def cosine_distance(a: Vector, b: Vector) -> float | None:
    """``1 - cos(a, b)`` of two unit vectors (:func:`unit`); None when their lengths differ (a vector
    from another model)."""
    if len(a) != len(b):
        return None
    if not any(a) or not any(b):
        return 1.0  # no direction: as far as unrelated
    return 1.0 - sum(x * y for x, y in zip(a, b, strict=True))


def nearest(
    query: Vector, candidates: Iterable[tuple[Tool, Vector]], *, threshold: float, limit: int
) -> list[Tool]:
    """At most ``limit`` tools within ``threshold`` cosine distance of ``query``, nearest first (ties
    by name); all vectors unit length."""
    if limit < 1:
        return []
    scored = []
    for tool, vector in candidates:
        distance = cosine_distance(query, vector)
        if distance is not None and distance <= threshold:
            scored.append((distance, tool.name, tool))
    scored.sort(key=lambda entry: (entry[0], entry[1]))
    return [tool for _, _, tool in scored[:limit]]


def merge(semantic: Sequence[Tool], keyword: Sequence[Tool], limit: int) -> list[Tool]:
    """The semantic matches, then the keyword matches not among them, at most ``limit``."""
    seen: set[str] = set()
    merged = []
    for tool in (*semantic, *keyword):
        if tool.name not in seen:
            seen.add(tool.name)
            merged.append(tool)
    return merged[:limit]
