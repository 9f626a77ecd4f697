"""Desired state of an EmbeddingServer: pure functions from the typed spec to the child manifests.

Children, both owned by the EmbeddingServer:

- StatefulSet ``<name>``: the TEI image as container ``embedding`` (``--model-id`` and ``--port`` from the
  spec), ``spec.replicas`` pods. Security defaults as for every pod the operator renders: a non-root user
  (uid/gid 1000 unless ``podTemplateSpec`` says otherwise), no privilege escalation, no capabilities, a
  read-only root filesystem, no API token. TEI writes only its model cache: ``/data`` (``HF_HOME``) is a
  writable volume, the claim ``model-cache`` of a ``volumeClaimTemplate`` with ``modelCache.enabled``, else
  an ``emptyDir``, and ``/tmp`` an ``emptyDir``;
- Service ``<name>``: the TEI API on ``spec.port``; ``status.url`` is its in-cluster URL.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from api.embeddingserver import EmbeddingServer, ModelCache
from controller.reconcilers import children
from controller.reconcilers import workload_build as common
from controller.reconcilers.children import JSON
from controller.reconcilers.podtemplate import (
    RESTRICTED_POD_SECURITY,
    SERVER_USER,
    apply_user_patch,
    container_security,
)
from controller.reconcilers.settings import ReconcilerSettings
from controller.reconcilers.workload_build import Owner

CONTAINER = "embedding"
COMPONENT = "server"
"""The pods' ``component`` label: the server pods, whose states ``server_pods`` reads (as for MCPServer)."""
CACHE_VOLUME = "model-cache"
CACHE_DIR = "/data"
MODEL_CACHE_ANNOTATION = "mcp-operator.dev/model-cache"
"""StatefulSet annotation: the hash of its volume claim templates, which Kubernetes never lets change."""
EMBEDDING_PROVIDER = "tei"
"""The API of an EmbeddingServer (HuggingFace Text Embeddings Inference), as the optimizer names it."""


@dataclass(frozen=True)
class Names:
    """Names of an EmbeddingServer's children: StatefulSet and Service ``<name>`` (ToolHive's names)."""

    name: str

    @property
    def statefulset(self) -> str:
        return children.child_name(self.name, "", children.MAX_STATEFULSET_NAME)

    @property
    def service(self) -> str:
        return children.child_name(self.name)


def service_url(server: EmbeddingServer, settings: ReconcilerSettings) -> str:
    """``status.url``: the Service's in-cluster URL (TEI serves ``/embed`` and ``/health`` below it)."""
    host = f"{Names(server.metadata.name or '').service}.{server.metadata.namespace}.svc"
    return f"http://{host}.{settings.cluster_domain}:{server.spec.port}"


def model_cache(server: EmbeddingServer) -> ModelCache | None:
    """The model cache's settings when it is enabled."""
    cache = server.spec.model_cache
    return cache if cache is not None and cache.enabled else None


def build_children(server: EmbeddingServer, owner_ref: JSON) -> list[JSON]:
    """The StatefulSet and the Service (apply bodies: only the fields we own)."""
    owner = Owner.of(server, owner_ref, COMPONENT)
    names = Names(owner.name)
    overrides = server.spec.resource_overrides
    service = common.service(
        owner, names.service, server.spec.port, overrides=overrides.service if overrides else None
    )
    return [build_statefulset(server, owner), service]


def claim_templates(server: EmbeddingServer, owner: Owner) -> list[JSON]:
    """The model cache's volume claim template (none when the cache is off)."""
    cache = model_cache(server)
    if cache is None:
        return []
    overrides = server.spec.resource_overrides
    extra = overrides.persistent_volume_claim if overrides else None
    metadata: JSON = {
        "name": CACHE_VOLUME,
        "labels": {**((extra.labels or {}) if extra else {}), **owner.labels()},
    }
    if extra is not None and extra.annotations:
        metadata["annotations"] = dict(extra.annotations)
    spec: JSON = {"accessModes": [cache.access_mode], "resources": {"requests": {"storage": cache.size}}}
    if cache.storage_class_name is not None:
        spec["storageClassName"] = cache.storage_class_name
    return [{"metadata": metadata, "spec": spec}]


def claims_hash(templates: list[JSON]) -> str:
    """:data:`MODEL_CACHE_ANNOTATION`'s value for ``templates``."""
    return children.config_hash(yaml.safe_dump(templates, sort_keys=True))


def _env(server: EmbeddingServer) -> list[JSON]:
    """``HF_HOME`` on the writable volume and ``HF_TOKEN`` from its Secret; the user's entries replace
    ours of the same name (a list keyed by name cannot hold one twice)."""
    given = {e.name for e in server.spec.env or []}
    env: list[JSON] = [] if "HF_HOME" in given else [{"name": "HF_HOME", "value": CACHE_DIR}]
    token = server.spec.hf_token_secret_ref
    if token is not None:
        env.append(
            {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": token.name, "key": token.key}}}
        )
    return env + [{"name": e.name, "value": e.value} for e in server.spec.env or []]


def _health(**timing: int) -> JSON:
    """A probe of TEI's ``/health``."""
    return {"httpGet": {"path": "/health", "port": "http"}, **timing}


def _container(server: EmbeddingServer) -> JSON:
    spec = server.spec
    container: JSON = {
        "name": CONTAINER,
        "image": spec.image,
        "imagePullPolicy": spec.image_pull_policy,
        "args": ["--model-id", spec.model, "--port", str(spec.port), *(spec.args or [])],
        "env": _env(server),
        "ports": [{"name": "http", "containerPort": spec.port, "protocol": "TCP"}],
        # TEI downloads the model before it listens: up to an hour of start-up before liveness counts.
        "startupProbe": _health(periodSeconds=10, failureThreshold=360),
        "readinessProbe": _health(periodSeconds=10, timeoutSeconds=5),
        "livenessProbe": _health(periodSeconds=30, timeoutSeconds=10, failureThreshold=3),
        "securityContext": container_security(read_only_root=True),
        "volumeMounts": [
            {"name": CACHE_VOLUME, "mountPath": CACHE_DIR},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    if spec.resources is not None:
        container["resources"] = spec.resources.model_dump(exclude_none=True)
    return container


def build_statefulset(server: EmbeddingServer, owner: Owner) -> JSON:
    names = Names(owner.name)
    container = _container(server)
    volumes: list[JSON] = [{"name": "tmp", "emptyDir": {}}]
    templates = claim_templates(server, owner)
    if not templates:
        volumes.insert(0, {"name": CACHE_VOLUME, "emptyDir": {}})
    pod_spec: JSON = {
        "automountServiceAccountToken": False,
        "securityContext": {**RESTRICTED_POD_SECURITY, **SERVER_USER},
        "containers": [container],
        "volumes": volumes,
    }
    overrides = server.spec.resource_overrides
    sts_overrides = overrides.stateful_set if overrides else None
    pod_overrides = sts_overrides.pod_template_metadata_overrides if sts_overrides else None
    metadata: JSON = {"labels": {**((pod_overrides.labels or {}) if pod_overrides else {}), **owner.labels()}}
    if pod_overrides is not None and pod_overrides.annotations:
        metadata["annotations"] = dict(pod_overrides.annotations)
    owned = {key: container[key] for key in common.OWNED_CONTAINER_FIELDS}
    template = apply_user_patch(
        {"metadata": metadata, "spec": pod_spec}, server.spec.pod_template_spec, owned, owner.selector()
    )
    spec: JSON = {
        "serviceName": names.service,
        "replicas": server.spec.replicas,
        # Parallel, as for MCPServer: a pod broken by its spec is replaced once the spec is fixed.
        "podManagementPolicy": "Parallel",
        "selector": {"matchLabels": owner.selector()},
        "template": template,
    }
    if templates:
        spec["volumeClaimTemplates"] = templates
    meta = owner.meta(names.statefulset, overrides=sts_overrides)
    meta["annotations"] = {**meta.get("annotations", {}), MODEL_CACHE_ANNOTATION: claims_hash(templates)}
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta, "spec": spec}
