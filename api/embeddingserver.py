"""EmbeddingServer: a HuggingFace Text Embeddings Inference (TEI) server for the optimizer's semantic search.

Field names and defaults are ToolHive's (``toolhive.stacklok.dev`` EmbeddingServer), so its manifests port
by changing the API group. The operator runs it as a StatefulSet (container ``embedding``) behind a
Service; a VirtualMCPServer uses it through ``spec.embeddingServerRef`` (docs/vmcp.md, "Optimizer").
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from api.base import CRDModel, Port, Quantity
from api.common import (
    EnvVar,
    PodTemplateMetadataOverrides,
    PodTemplateSpec,
    ResourceRequirements,
    SecretKeyRef,
    WorkloadStatus,
)
from api.podtemplate import owned_label_problems, pod_template_problems
from api.problems import Problem
from api.resource import CustomResource

__all__ = [
    "DEFAULT_IMAGE",
    "DEFAULT_MODEL",
    "EmbeddingResourceOverrides",
    "EmbeddingServer",
    "EmbeddingServerPhase",
    "EmbeddingServerSpec",
    "EmbeddingServerStatus",
    "ModelCache",
    "embedding_server_rules",
]

DEFAULT_MODEL = "BAAI/bge-small-en-v1.5"
DEFAULT_IMAGE = "ghcr.io/huggingface/text-embeddings-inference:cpu-latest"
EmbeddingServerPhase = Literal["Pending", "Downloading", "Ready", "Failed", "Terminating"]

OPERATOR_ARGS = ("--model-id", "--port")
"""TEI arguments the operator passes from ``spec.model`` and ``spec.port`` (TEI refuses one given twice)."""


class ModelCache(CRDModel):
    """A PersistentVolumeClaim per replica holding the downloaded model, so a restarted pod does not
    download it again (a ``volumeClaimTemplate`` of the StatefulSet, claim ``model-cache``)."""

    enabled: bool = True
    """Whether the model is cached on a volume claim; false: an ``emptyDir`` (downloaded on every start)."""
    storage_class_name: str | None = Field(default=None, min_length=1)
    """Storage class of the claims; unset: the cluster's default storage class."""
    size: Quantity = "10Gi"
    """Size of each claim, e.g. ``10Gi``."""
    access_mode: Literal["ReadWriteOnce", "ReadWriteMany", "ReadOnlyMany"] = "ReadWriteOnce"
    """Access mode of the claims."""


class MetadataOverrides(CRDModel):
    """Labels and annotations added to one object the operator creates."""

    labels: dict[str, str] | None = None
    """Extra labels (the operator's own ``app.kubernetes.io`` labels are refused)."""
    annotations: dict[str, str] | None = None
    """Extra annotations."""


class StatefulSetOverrides(MetadataOverrides):
    """Labels and annotations added to the StatefulSet and its pods."""

    pod_template_metadata_overrides: PodTemplateMetadataOverrides | None = None
    """Extra labels and annotations on the embedding server's pods."""


class EmbeddingResourceOverrides(CRDModel):
    """Metadata added to the objects the operator creates for an EmbeddingServer."""

    stateful_set: StatefulSetOverrides | None = None
    """Additions to the StatefulSet and its pods."""
    service: MetadataOverrides | None = None
    """Additions to the Service."""
    persistent_volume_claim: MetadataOverrides | None = None
    """Additions to the model cache's volume claims (``modelCache.enabled``)."""


class EmbeddingServerSpec(CRDModel):
    """Desired state of an EmbeddingServer."""

    model: str = Field(default=DEFAULT_MODEL, min_length=1)
    """The HuggingFace embedding model, e.g. ``sentence-transformers/all-MiniLM-L6-v2`` (TEI's
    ``--model-id``)."""
    hf_token_secret_ref: SecretKeyRef | None = None
    """A Secret key holding a HuggingFace token (``HF_TOKEN`` of the container), for private or gated
    models."""
    image: str = Field(default=DEFAULT_IMAGE, min_length=1)
    """The HuggingFace Text Embeddings Inference image (https://github.com/huggingface/text-embeddings-inference)."""
    image_pull_policy: Literal["Always", "Never", "IfNotPresent"] = "IfNotPresent"
    """Pull policy of the image."""
    port: Port = 8080
    """Port the server listens on, and of the Service (TEI's ``--port``)."""
    args: list[str] | None = None
    """Further TEI arguments, e.g. ``[--max-batch-requests, "64"]`` (``--model-id`` and ``--port`` come
    from ``model`` and ``port``)."""
    env: Annotated[
        list[EnvVar] | None,
        Field(json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}),
    ] = None
    """Environment variables of the container (a name the operator sets, such as ``HF_HOME``, is
    replaced by yours)."""
    resources: ResourceRequirements | None = None
    """Compute resources of the container."""
    model_cache: ModelCache | None = None
    """Persistent storage for the downloaded model; unset: an ``emptyDir``. A StatefulSet's volume claim
    templates cannot change: the operator replaces the StatefulSet when this changes (existing claims
    are kept and reused; delete them to resize)."""
    pod_template_spec: PodTemplateSpec | None = None
    """A partial PodTemplateSpec merged into the pod (node selectors, tolerations, security contexts);
    the server's container is named ``embedding``."""
    resource_overrides: EmbeddingResourceOverrides | None = None
    """Labels and annotations added to the StatefulSet, its pods, the Service and the volume claims."""
    replicas: int = Field(default=1, ge=1, json_schema_extra={"format": "int32"})
    """Replicas of the StatefulSet."""


class EmbeddingServerStatus(WorkloadStatus):
    """Observed state of an EmbeddingServer."""

    phase: EmbeddingServerPhase | None = None
    """Pending (not created yet), Downloading (pods started, none ready: TEI downloads the model before
    it serves), Ready, Failed or Terminating."""
    url: str | None = None
    """The Service's in-cluster URL, ``http://NAME.NAMESPACE.svc.cluster.local:PORT`` (the TEI API)."""
    ready_replicas: int | None = Field(default=None, ge=0, json_schema_extra={"format": "int32"})
    """Pods ready to serve."""


class EmbeddingServer(CustomResource):
    """A HuggingFace Text Embeddings Inference server for the optimizer's semantic tool search."""

    KIND: ClassVar[str] = "EmbeddingServer"

    kind: Literal["EmbeddingServer"] = "EmbeddingServer"
    """``EmbeddingServer``."""
    spec: EmbeddingServerSpec = Field(default_factory=EmbeddingServerSpec, json_schema_extra={"default": {}})
    """Desired state."""
    status: EmbeddingServerStatus = Field(default_factory=EmbeddingServerStatus)
    """Observed state, written by the operator."""


def embedding_server_rules(spec: EmbeddingServerSpec) -> list[Problem]:
    """What the schema cannot say: arguments the operator passes itself, a token given twice, the pod
    template's shape and labels the operator owns."""
    problems = [
        Problem(
            f"spec.args[{index}]",
            f"{arg!r} is set by the operator from spec.{'model' if 'model' in arg else 'port'}; "
            "remove it from spec.args",
        )
        for index, arg in enumerate(spec.args or [])
        if arg.split("=", 1)[0] in OPERATOR_ARGS
    ]
    if spec.hf_token_secret_ref is not None:
        problems += [
            Problem(
                f"spec.env[{index}].name", "HF_TOKEN comes from spec.hfTokenSecretRef; set one of the two"
            )
            for index, env in enumerate(spec.env or [])
            if env.name == "HF_TOKEN"
        ]
    if spec.pod_template_spec is not None:
        problems += pod_template_problems(spec.pod_template_spec)
    overrides = spec.resource_overrides or EmbeddingResourceOverrides()
    sts = overrides.stateful_set
    pod = sts.pod_template_metadata_overrides if sts else None
    base = "spec.resourceOverrides"
    return problems + owned_label_problems(
        {
            f"{base}.statefulSet.labels": sts.labels if sts else None,
            f"{base}.statefulSet.podTemplateMetadataOverrides.labels": pod.labels if pod else None,
            f"{base}.service.labels": overrides.service.labels if overrides.service else None,
            f"{base}.persistentVolumeClaim.labels": (
                overrides.persistent_volume_claim.labels if overrides.persistent_volume_claim else None
            ),
        }
    )
