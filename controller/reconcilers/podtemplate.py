"""Pod templates: security defaults, and the user's ``podTemplateSpec`` merged over ours.

Pure functions over plain dicts (Kubernetes JSON shapes). The merge follows strategic-merge-patch rules
for the lists users actually patch (containers, initContainers, volumes, env, volumeMounts, ports,
imagePullSecrets, tolerations), and then re-imposes the few fields the operator must own for the pod to
work (the ``mcp`` container's image, args and stdin; our labels), so a patch can tune a pod but cannot
break the contract between the proxy and its server.
"""

from __future__ import annotations

import copy
from typing import Any

JSON = dict[str, Any]

# Lists merged by a key (strategic merge); any other list in a patch replaces ours.
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
}

RESTRICTED_POD_SECURITY: JSON = {
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def container_security(read_only_root: bool) -> JSON:
    """The container securityContext we default to (restricted Pod Security Standard)."""
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": read_only_root,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def strategic_merge(base: Any, patch: Any, key: str = "") -> Any:
    """Merge ``patch`` over ``base`` (both JSON values); ``None`` in a patch map deletes the key."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for name, value in patch.items():
            if value is None:
                merged.pop(name, None)
            elif name in merged:
                merged[name] = strategic_merge(merged[name], value, name)
            else:
                merged[name] = copy.deepcopy(value)
        return merged
    if isinstance(base, list) and isinstance(patch, list) and key in MERGE_KEYS:
        merge_key = MERGE_KEYS[key]
        if all(isinstance(item, dict) and merge_key in item for item in [*base, *patch]):
            by_key = {item[merge_key]: item for item in base}
            order = [item[merge_key] for item in base]
            for item in patch:
                ident = item[merge_key]
                if ident in by_key:
                    by_key[ident] = strategic_merge(by_key[ident], item)
                else:
                    by_key[ident] = copy.deepcopy(item)
                    order.append(ident)
            return [by_key[ident] for ident in order]
    if key == "tolerations" and isinstance(base, list) and isinstance(patch, list):
        return [*base, *(item for item in patch if item not in base)]
    return copy.deepcopy(patch)


def pod_template_problems(patch: Any, path: str = "spec.podTemplateSpec") -> list[tuple[str, str]]:
    """Shape checks for a user ``podTemplateSpec`` (the CRD keeps it free-form): (field, message) pairs."""
    problems: list[tuple[str, str]] = []
    if not isinstance(patch, dict):
        return [(path, "must be an object shaped like a Kubernetes PodTemplateSpec ({metadata, spec})")]
    unknown = sorted(set(patch) - {"metadata", "spec"})
    if unknown:
        problems.append(
            (f"{path}.{unknown[0]}", "unknown field; a PodTemplateSpec has only metadata and spec")
        )
    metadata = patch.get("metadata", {})
    if not isinstance(metadata, dict):
        problems.append((f"{path}.metadata", "must be an object with labels and annotations"))
    else:
        for field in ("labels", "annotations"):
            value = metadata.get(field, {})
            if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()
            ):
                problems.append((f"{path}.metadata.{field}", "must map strings to strings (quote numbers)"))
    spec = patch.get("spec", {})
    if not isinstance(spec, dict):
        return [*problems, (f"{path}.spec", "must be an object shaped like a Kubernetes PodSpec")]
    for field in ("containers", "initContainers", "volumes", "tolerations", "imagePullSecrets"):
        value = spec.get(field, [])
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            problems.append((f"{path}.spec.{field}", "must be a list of objects"))
            continue
        if field in ("containers", "initContainers", "volumes"):
            for index, item in enumerate(value):
                if not isinstance(item.get("name"), str) or not item.get("name"):
                    problems.append(
                        (f"{path}.spec.{field}[{index}].name", "is required (items merge by name)")
                    )
    for field in ("nodeSelector",):
        value = spec.get(field, {})
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            problems.append((f"{path}.spec.{field}", "must map strings to strings"))
    for field in ("securityContext", "affinity"):
        if not isinstance(spec.get(field, {}), dict):
            problems.append((f"{path}.spec.{field}", "must be an object"))
    containers = spec.get("containers", [])
    if isinstance(containers, list):
        for index, item in enumerate(containers):
            if not isinstance(item, dict):
                continue
            for field in ("env", "volumeMounts", "ports", "args", "command"):
                if field in item and not isinstance(item[field], list):
                    problems.append((f"{path}.spec.containers[{index}].{field}", "must be a list"))
            for field in ("resources", "securityContext"):
                if field in item and not isinstance(item[field], dict):
                    problems.append((f"{path}.spec.containers[{index}].{field}", "must be an object"))
    return problems


def apply_user_patch(template: JSON, patch: JSON | None, owned_container: JSON, owned_labels: JSON) -> JSON:
    """Merge the user's patch over ``template``; then re-impose the fields the operator must own.

    ``owned_container`` holds the fields of the main container that cannot be patched (name, image, args,
    stdin, ...); ``owned_labels`` are the selector labels, which always win on key collision.
    """
    merged: JSON = strategic_merge(template, patch) if patch else copy.deepcopy(template)
    metadata = merged.setdefault("metadata", {})
    metadata["labels"] = {**metadata.get("labels", {}), **owned_labels}
    containers = merged.setdefault("spec", {}).setdefault("containers", [])
    for index, container in enumerate(containers):
        if container.get("name") == owned_container["name"]:
            containers[index] = {**container, **owned_container}
    return merged
