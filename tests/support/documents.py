"""Comparing Kubernetes documents as plain data."""

from __future__ import annotations

from typing import Any


def is_subset(small: Any, big: Any) -> bool:
    """Everything in ``small`` is in ``big`` unchanged: maps may gain keys, lists keep their length."""
    if isinstance(small, dict):
        return isinstance(big, dict) and all(k in big and is_subset(v, big[k]) for k, v in small.items())
    if isinstance(small, list):
        return isinstance(big, list) and len(small) == len(big) and all(map(is_subset, small, big))
    return bool(small == big)
