"""What every child object shares: labels, metadata with an owner, the config hash, derived names.

The config-hash annotation's name lives in ``api.podtemplate``, whose validator refuses overrides of it."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from pydantic import BaseModel

JSON = dict[str, Any]

MANAGED_BY = "mcp-operator"

# Kubernetes limits: Service names are DNS-1035 labels (63); a StatefulSet's name plus its 10-character
# controller-revision-hash suffix must fit a 63-character label value, so StatefulSet names stop at 52.
MAX_LABEL = 63
MAX_STATEFULSET_NAME = 52
NAME_HASH_LENGTH = 8
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?\Z")


def _name_digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:NAME_HASH_LENGTH]


def child_name(name: str, suffix: str = "", limit: int = MAX_LABEL) -> str:
    """The name of a child: ``name + suffix`` when that is a DNS-1123 label of at most ``limit``
    characters, else a stable shortened form ``<cut name>-<8 hex of sha256(name)><suffix>``.

    An object's name may be a 253-character DNS subdomain with dots; Services (and the label values and
    pod hostnames derived from child names) need a DNS-1123 label of at most 63. The hash keeps two long
    names that share a prefix (or ``a.b`` and ``a-b``) apart, and is the same on every reconcile.
    """
    full = f"{name}{suffix}"
    if len(full) <= limit and _DNS_LABEL.match(full):
        return full
    room = limit - len(suffix) - NAME_HASH_LENGTH - 1
    stem = re.sub(r"[^a-z0-9-]+", "-", name.lower())[:room].strip("-")
    return f"{stem}-{_name_digest(name)}{suffix}" if stem else f"{_name_digest(name)}{suffix}"


def label_value(value: str) -> str:
    """``value`` as a label value: unchanged when valid, else cut to 63 with a stable hash suffix."""
    if len(value) <= MAX_LABEL and _LABEL_VALUE.match(value):
        return value
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", value)[: MAX_LABEL - NAME_HASH_LENGTH - 1].strip("-_.")
    return f"{stem}-{_name_digest(value)}" if stem else _name_digest(value)


def labels(kind: str, instance: str, component: str) -> dict[str, str]:
    """The recommended ``app.kubernetes.io`` label set; the selector of each workload uses all of it.

    ``instance`` is the owner's name, shortened by ``label_value`` when it exceeds a label value's 63."""
    return {
        "app.kubernetes.io/name": kind.lower(),
        "app.kubernetes.io/instance": label_value(instance),
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


def spec_hash(spec: BaseModel) -> str:
    """Hash of a config kind's spec (MCPToolConfig, MCPExternalAuthConfig): ``status.configHash`` and the
    ``...ConfigHash`` fields of the workloads that use it agree because both come from here."""
    return config_hash(spec.model_dump_json(by_alias=True))
