"""Durations in config files: ToolHive's Go-style strings (``"30s"``, ``"500ms"``, ``"1m30s"``) or seconds."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

__all__ = ["Duration", "duration_seconds", "parse_duration"]

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: Any) -> float:
    """Seconds from ``"30s"``, ``"250ms"``, ``"1m30s"`` or a plain number of seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '30s' or '500ms'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            parts = _DURATION_PART.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                raise ValueError(
                    f"invalid duration {value!r}: use a number of seconds or a string like '30s', "
                    "'500ms', '1m30s'"
                ) from None
            seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    else:
        raise ValueError("a duration is a number of seconds or a string like '30s' or '500ms'")
    if seconds <= 0:
        raise ValueError(f"duration {value!r} must be positive")
    return seconds


def duration_seconds(text: str) -> float:
    """Seconds of a Go-style duration string the CRD schema accepted (``"0s"`` is 0.0, never an error)."""
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))


def _format_duration(seconds: float) -> str:
    return f"{seconds:g}s"


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(_format_duration, return_type=str, when_used="json"),
]
"""Seconds (float) in Python; ``"30s"`` strings in JSON/YAML."""
