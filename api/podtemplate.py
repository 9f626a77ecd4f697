"""The one validator of what a user adds to the pods the operator renders, for every workload kind: the
free-form ``podTemplateSpec`` and the ``resourceOverrides`` of the proxy Deployment and Service.

The operator merges the template over the pod it renders (strategic-merge rules for the lists users
patch), so every list it merges by key must hold objects with that key, and every map it merges must be a
map. ``resourceOverrides`` only adds metadata, env and pull secrets: a key the operator owns (its
``app.kubernetes.io`` labels, which select the pods, and the config-hash annotation, which rolls them) is
refused there rather than silently replaced. Each problem names the JSON path to fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from api.common import ResourceOverrides
from api.problems import Problem

__all__ = [
    "CONFIG_HASH_ANNOTATION",
    "OWNED_LABELS",
    "owned_label_problems",
    "pod_template_problems",
    "resource_overrides_problems",
]

CONFIG_HASH_ANNOTATION = "mcp-operator.dev/config-hash"
"""Pod-template annotation holding the hash of the rendered configuration: a change rolls the pods."""
OWNED_LABELS = tuple(
    f"app.kubernetes.io/{key}" for key in ("name", "instance", "component", "managed-by", "part-of")
)
"""The labels the operator puts on every child; the first three select the pods."""

_MERGED_LISTS = ("containers", "initContainers", "volumes", "tolerations", "imagePullSecrets")
_NAMED_LISTS = ("containers", "initContainers", "volumes")


def pod_template_problems(
    patch: Any, path: str = "spec.podTemplateSpec", mcp_port: int | None = None
) -> list[Problem]:
    """Shape problems of ``patch``; ``mcp_port``: the MCP server's port, which no sidecar may take."""
    if not isinstance(patch, dict):
        return [
            Problem(path, "must be an object shaped like a Kubernetes PodTemplateSpec ({metadata, spec})")
        ]
    unknown = sorted(set(patch) - {"metadata", "spec"})
    if unknown:
        return [Problem(path, f"unknown keys {unknown}; a PodTemplateSpec has only metadata and spec")]
    problems = _metadata_problems(patch.get("metadata", {}), f"{path}.metadata")
    spec = patch.get("spec", {})
    if not isinstance(spec, dict):
        return [*problems, Problem(f"{path}.spec", "must be an object shaped like a Kubernetes PodSpec")]
    for field in _MERGED_LISTS:
        value = spec.get(field, [])
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            problems.append(Problem(f"{path}.spec.{field}", "must be a list of objects"))
        elif field in _NAMED_LISTS:
            problems += [
                Problem(f"{path}.spec.{field}[{i}].name", "is required (items merge by name)")
                for i, item in enumerate(value)
                if not isinstance(item.get("name"), str) or not item.get("name")
            ]
    node_selector = spec.get("nodeSelector", {})
    if not isinstance(node_selector, dict) or not all(isinstance(v, str) for v in node_selector.values()):
        problems.append(Problem(f"{path}.spec.nodeSelector", "must map strings to strings"))
    for field in ("securityContext", "affinity"):
        if not isinstance(spec.get(field, {}), dict):
            problems.append(Problem(f"{path}.spec.{field}", "must be an object"))
    containers = spec.get("containers", [])
    for index, item in enumerate(containers if isinstance(containers, list) else []):
        if isinstance(item, dict):
            problems += _container_problems(item, f"{path}.spec.containers[{index}]", mcp_port)
    return problems


def _metadata_problems(metadata: Any, path: str) -> list[Problem]:
    if not isinstance(metadata, dict):
        return [Problem(path, "must be an object with labels and annotations")]
    return [
        Problem(f"{path}.{field}", "must map strings to strings (quote numbers)")
        for field in ("labels", "annotations")
        if not isinstance(value := metadata.get(field, {}), dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    ]


def _container_problems(container: dict[str, Any], path: str, mcp_port: int | None) -> list[Problem]:
    problems = [
        Problem(f"{path}.{field}", "must be a list")
        for field in ("env", "volumeMounts", "ports", "args", "command")
        if field in container and not isinstance(container[field], list)
    ]
    problems += [
        Problem(f"{path}.{field}", "must be an object")
        for field in ("resources", "securityContext")
        if field in container and not isinstance(container[field], dict)
    ]
    ports = container.get("ports")
    if mcp_port is None or container.get("name") == "mcp" or not isinstance(ports, list):
        return problems
    return problems + [
        Problem(
            f"{path}.ports[{j}].containerPort",
            f"port {mcp_port} is the MCP server's mcpPort; change this port or spec.mcpPort",
        )
        for j, port in enumerate(ports)
        if isinstance(port, dict) and port.get("containerPort") == mcp_port
    ]


def resource_overrides_problems(
    overrides: ResourceOverrides | None, path: str = "spec.resourceOverrides"
) -> list[Problem]:
    """Keys of ``resourceOverrides`` that would replace what the operator owns."""
    if overrides is None:
        return []
    deployment, service = overrides.proxy_deployment, overrides.proxy_service
    pod = deployment.pod_template_metadata_overrides if deployment else None
    labelled = {
        f"{path}.proxyDeployment.labels": deployment.labels if deployment else None,
        f"{path}.proxyDeployment.podTemplateMetadataOverrides.labels": pod.labels if pod else None,
        f"{path}.proxyService.labels": service.labels if service else None,
    }
    problems = owned_label_problems(labelled)
    if pod is not None and CONFIG_HASH_ANNOTATION in (pod.annotations or {}):
        problems.append(
            Problem(
                f"{path}.proxyDeployment.podTemplateMetadataOverrides.annotations[{CONFIG_HASH_ANNOTATION}]",
                "is set by the operator (a configuration change rolls the pods through it); remove it",
            )
        )
    return problems


def owned_label_problems(labelled: Mapping[str, Mapping[str, str] | None]) -> list[Problem]:
    """Labels the operator owns among user-added ones (``labelled``: the field's path -> its labels)."""
    return [
        Problem(f"{field}[{key}]", "is set by the operator (it selects and names its objects); remove it")
        for field, given in labelled.items()
        for key in OWNED_LABELS
        if key in (given or {})
    ]
