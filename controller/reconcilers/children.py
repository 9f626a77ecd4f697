"""What every child object shares: labels, metadata with an owner, the config hash, derived names."""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel

from api.problems import Problem

JSON = dict[str, Any]

MANAGED_BY = "mcp-operator"
CONFIG_HASH_ANNOTATION = "mcp-operator.dev/config-hash"
"""Pod-template annotation holding the hash of the rendered configuration: a change rolls the pods."""

# Kubernetes limits: Service names are DNS-1035 labels (63); a StatefulSet's name plus its 10-character
# controller-revision-hash suffix must fit a 63-character label value, so StatefulSet names stop at 52.
MAX_LABEL = 63
MAX_STATEFULSET_NAME = 52


def labels(kind: str, instance: str, component: str) -> dict[str, str]:
    """The recommended ``app.kubernetes.io`` label set; the selector of each workload uses all of it."""
    return {
        "app.kubernetes.io/name": kind.lower(),
        "app.kubernetes.io/instance": instance,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/part-of": MANAGED_BY,
    }


def selector_labels(kind: str, instance: str, component: str) -> dict[str, str]:
    """The immutable subset used in workload selectors (never add keys to it: selectors cannot change)."""
    full = labels(kind, instance, component)
    return {
        k: full[k]
        for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component")
    }


def object_meta(
    name: str,
    namespace: str,
    owner_ref: JSON,
    object_labels: dict[str, str],
    *,
    extra_labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> JSON:
    """metadata of a child: our labels win over user-supplied extra labels on key collision."""
    meta: JSON = {
        "name": name,
        "namespace": namespace,
        "labels": {**(extra_labels or {}), **object_labels},
        "ownerReferences": [owner_ref],
    }
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def config_hash(text: str) -> str:
    """Short stable hash of a rendered configuration."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def name_problems(name: str, derived: dict[str, int]) -> list[Problem]:
    """Problems when ``name`` plus a suffix would exceed a Kubernetes limit. ``derived``: name -> limit."""
    problems = []
    for child, limit in derived.items():
        if len(child) > limit:
            longest = limit - (len(child) - len(name))
            problems.append(
                Problem(
                    "metadata.name",
                    f"'{name}' is {len(name)} characters, so the derived name '{child}' would exceed "
                    f"{limit}; use a name of at most {longest} characters",
                )
            )
    return problems


def spec_hash(spec: BaseModel) -> str:
    """Hash of a config kind's spec (MCPToolConfig, MCPExternalAuthConfig): ``status.configHash`` and the
    ``...ConfigHash`` fields of the workloads that use it agree because both come from here."""
    return config_hash(spec.model_dump_json(by_alias=True))
