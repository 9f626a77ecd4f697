"""The EmbeddingServer kind for :func:`~controller.reconcilers.workload.reconcile_workload`: its children
(``embeddingserver_build``), the Secret of its HuggingFace token, and its status from the StatefulSet.

Phases as in ToolHive: Pending (nothing runs yet), Downloading (pods exist, none ready: TEI downloads the
model before it serves), Ready (a pod serves), Failed (an invalid spec, or a pod that cannot run: an image
that cannot be pulled, a crash loop; read from the pods as for MCPServer) and Terminating.

A StatefulSet's volume claim templates cannot change, so a changed ``modelCache`` leaves the StatefulSet
out of the desired children for one reconcile: it is deleted, and created again from the new spec.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from api.conditions import READY, RESOLVED_REFS, find_condition
from api.embeddingserver import EmbeddingServer
from api.notices import notices
from controller.core import (
    NORMAL,
    SECRET,
    SERVICE,
    STATEFULSET,
    Cache,
    Resource,
    Watch,
    controller_of,
    strip_pod_spec,
)
from controller.reconcilers import embeddingserver_build as build
from controller.reconcilers import server_pods
from controller.reconcilers.children import JSON
from controller.reconcilers.kinds import EMBEDDINGSERVER
from controller.reconcilers.refs import (
    SECRET_INDEX,
    Missing,
    index_watch,
    missing_config_secrets,
    strip_secret_values,
)
from controller.reconcilers.settings import ReconcilerSettings
from controller.reconcilers.status import FAILED, PENDING, StatusBuilder, accept
from controller.reconcilers.workload import Outcome, WorkloadKind
from controller.reconcilers.writes import Events

OWNED: tuple[Resource, ...] = (STATEFULSET, SERVICE)
READY_PHASE, DOWNLOADING = "Ready", "Downloading"


def index_hf_token(obj: JSON) -> list[str]:
    """The Secret an EmbeddingServer names in ``spec.hfTokenSecretRef``."""
    namespace = str((obj.get("metadata") or {}).get("namespace") or "")
    ref = (obj.get("spec") or {}).get("hfTokenSecretRef")
    name = ref.get("name") if isinstance(ref, dict) else None
    return [f"{namespace}/{name}"] if isinstance(name, str) and name else []


def setup(cache: Cache) -> list[Watch]:
    cache.set_transform(STATEFULSET, strip_pod_spec)  # read: metadata, status, volume claim templates
    cache.set_transform(SECRET, strip_secret_values)
    cache.add_index(EMBEDDINGSERVER, SECRET_INDEX, index_hf_token)
    return [
        index_watch(cache, SECRET, EMBEDDINGSERVER, SECRET_INDEX),
        server_pods.setup(cache, "EmbeddingServer"),
    ]


@dataclass
class EmbeddingRefs:
    """The token's Secret (``missing`` when it is not there) and the StatefulSet's model cache as created."""

    missing: list[Missing] = field(default_factory=list)
    cached_claims: str | None = None
    """:data:`~controller.reconcilers.embeddingserver_build.MODEL_CACHE_ANNOTATION` of our StatefulSet
    (None: none yet, or without the annotation)."""
    replacing: bool = False
    """Set by ``render``: the model cache changed, the StatefulSet is deleted to be created again."""


def resolve(cache: Cache, server: EmbeddingServer, raw: JSON) -> EmbeddingRefs:
    namespace, name = server.metadata.namespace or "", server.metadata.name or ""
    refs = EmbeddingRefs()
    token = server.spec.hf_token_secret_ref
    if token is not None:
        wanted = [("spec.hfTokenSecretRef", token.name, token.key)]
        refs.missing = missing_config_secrets(cache, namespace, f"EmbeddingServer '{name}'", wanted)
    sts = cache.get(STATEFULSET, namespace, build.Names(name).statefulset)
    owner = controller_of(sts) if sts is not None else None
    if sts is not None and owner is not None and owner.get("uid") == (raw.get("metadata") or {}).get("uid"):
        # Only our own StatefulSet, as we annotated it: another's is a name conflict, never replaced.
        annotations = (sts.get("metadata") or {}).get("annotations") or {}
        refs.cached_claims = annotations.get(build.MODEL_CACHE_ANNOTATION)
    return refs


def render(server: EmbeddingServer, owner_ref: JSON, refs: EmbeddingRefs) -> list[JSON] | None:
    """The children, or None while the token's Secret is missing (a pod could not start without it)."""
    if refs.missing:
        return None
    desired = build.build_children(server, owner_ref)
    sts = next(child for child in desired if child["kind"] == "StatefulSet")
    claims = sts["metadata"]["annotations"][build.MODEL_CACHE_ANNOTATION]
    if refs.cached_claims is not None and refs.cached_claims != claims:
        refs.replacing = True
        return [child for child in desired if child is not sts]  # pruned now, created again next time
    return desired


def kind(settings: ReconcilerSettings) -> WorkloadKind[EmbeddingServer, EmbeddingRefs]:
    """The EmbeddingServer kind with ``settings`` (the cluster domain of ``status.url``)."""

    def status(server: EmbeddingServer, refs: EmbeddingRefs, outcome: Outcome) -> tuple[JSON, Events]:
        names = build.Names(server.metadata.name or "")
        namespace = server.metadata.namespace
        sts = outcome.newest(STATEFULSET, namespace, names.statefulset)
        url = outcome.url_once_served(namespace, names.service, build.service_url(server, settings))
        builder = StatusBuilder(
            list(outcome.previous.get("conditions") or []), server.metadata.generation or 0
        )
        accept(builder, notices(server), "the spec is valid")
        missing = [*refs.missing, *outcome.conflicts]
        if missing:
            builder.set(RESOLVED_REFS, False, missing[0].reason, "; ".join(m.message for m in missing))
        else:
            builder.set(RESOLVED_REFS, True, "ResolvedRefs", "every referenced object exists")
        phase, message, ready = _phase(
            server, sts=sts, url=url, missing=missing, cache=outcome.cache, builder=builder
        )
        if refs.replacing:
            message = "spec.modelCache changed: the StatefulSet is replaced (its volume claims cannot change)"
            builder.events.append((NORMAL, "ModelCacheChanged", message))
        status: JSON = {
            "phase": phase,
            "message": message,
            **({"url": url} if url else {}),
            "readyReplicas": ready,
            "observedGeneration": server.metadata.generation or 0,
            "conditions": builder.conditions,
        }
        return status, builder.events

    return WorkloadKind(
        EMBEDDINGSERVER, EmbeddingServer, OWNED, setup, resolve, render, status, announce_rollout=False
    )


def _phase(
    server: EmbeddingServer,
    *,
    sts: JSON | None,
    url: str | None,
    missing: list[Missing],
    cache: Cache,
    builder: StatusBuilder,
) -> tuple[str, str, int]:
    """Phase, message and ready pods; sets the Ready condition. Ready as ToolHive counts it: a pod serves
    (during a rollout the pods of the previous revision still do)."""
    observed = (sts or {}).get("status") or {}
    ready, started = int(observed.get("readyReplicas") or 0), int(observed.get("replicas") or 0)
    if missing:
        message = "waiting for referenced objects: " + "; ".join(m.message for m in missing)
        builder.set(READY, False, "RefsNotResolved", message)
        return PENDING, message, ready
    if ready > 0 and url is not None:
        message = f"serving {server.spec.model} at {url}"
        builder.set(READY, True, "Available", message)
        return READY_PHASE, message, ready
    reported = find_condition(server.status.conditions, READY)
    failing = server_pods.problem(cache, sts, reported.reason if reported else None)
    if failing is not None:
        builder.set(READY, False, failing.reason, failing.message)
        return FAILED, failing.message, ready
    if started > 0:
        message = f"downloading model {server.spec.model} (no pod ready yet)"
        builder.set(READY, False, "ModelDownloading", message, event=False)
        return DOWNLOADING, message, ready
    message = "StatefulSet not created yet" if sts is None else "waiting for the StatefulSet's pods"
    builder.set(READY, False, "Unavailable", message, event=False)
    return PENDING, message, ready
