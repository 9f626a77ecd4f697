"""What the tests of the pure child builders share: settings, an owner reference and the golden-file check.

Regenerate a golden file after an intended change with ``UPDATE_GOLDEN=1 pytest tests/unit/reconcilers`` and
review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from controller.core.objects import owner_reference
from controller.reconcilers.settings import ReconcilerSettings

GOLDEN = Path(__file__).parent.parent / "unit" / "reconcilers" / "golden"
SETTINGS = ReconcilerSettings(proxy_image="ghcr.io/mcp-operator/mcp-operator:test")


def owner_ref(kind: str, name: str, uid: str) -> dict[str, Any]:
    """The controller ownerReferences entry the reconciler of ``kind`` gives each child it builds."""
    owner = {"apiVersion": "mcp-operator.dev/v1beta1", "kind": kind, "metadata": {"name": name, "uid": uid}}
    return owner_reference(owner)


def assert_matches_golden(objs: list[dict[str, Any]], name: str) -> None:
    """The children ``objs``, as YAML, are exactly ``golden/<name>`` (``UPDATE_GOLDEN=1`` rewrites it)."""
    text = yaml.safe_dump_all(objs, sort_keys=True)
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{path.name} differs; review and regenerate with UPDATE_GOLDEN=1"
