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

# The user a server container (an MCP server, an embedding server) runs as unless spec.podTemplateSpec says
# otherwise (ToolHive's uid/gid): runAsNonRoot alone refuses images whose USER is root or a name ("cannot
# verify user is non-root").
SERVER_USER: JSON = {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000}


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
