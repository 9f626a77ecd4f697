"""The tool optimizer's settings (``spec.config.optimizer``): ToolHive's defaults and ranges, and the rules a
structural schema cannot express (what goes with which provider, the embedding service's URL, headers that
would put a credential in the gateway's ConfigMap).

Shared by the VirtualMCPServer rules (``Accepted=False`` naming the field) and the gateway's config file
(:class:`api.vmcp_config.OptimizerConfig`), so both refuse the same things with the same words.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from api.checks import plain_header_problems, remote_url_problems
from api.durations import duration_seconds
from api.problems import Problem

if TYPE_CHECKING:  # the gateway's config file reads this module too: it need not load the CRD models
    from api.virtualmcpserver import Optimizer

__all__ = [
    "API_KEY_ENV",
    "DEFAULT_SEMANTIC_DISTANCE_THRESHOLD",
    "DEFAULT_SEMANTIC_RATIO",
    "DEFAULT_TIMEOUT_SECONDS",
    "embedding_header_problems",
    "embedding_service_problems",
    "optimizer_problems",
    "optimizer_setting_problems",
    "parse_share",
]

DEFAULT_SEMANTIC_RATIO = 0.5
"""ToolHive's ``hybridSearchSemanticRatio`` default: half of the answer semantic, half keywords."""
DEFAULT_SEMANTIC_DISTANCE_THRESHOLD = 1.0
"""ToolHive's ``semanticDistanceThreshold`` default: cosine distance 1 (orthogonal) or closer."""
DEFAULT_TIMEOUT_SECONDS = 30.0
"""ToolHive's ``embeddingServiceTimeout`` default."""
API_KEY_ENV = "OPENAI_API_KEY"
"""The gateway's environment variable holding an ``openai`` service's key (sent as a bearer token), so
the key lives in a Secret, never in the spec or the ConfigMap (ToolHive's variable)."""

_RANGES = {"hybridSearchSemanticRatio": (1.0, "0.5"), "semanticDistanceThreshold": (2.0, "1.0")}


def parse_share(text: str, name: str) -> float | str:
    """The number of a ratio or threshold string (``name``: its field name), or what is wrong with it."""
    top, example = _RANGES[name]
    try:
        value = float(text)
    except ValueError:
        return f"{text!r} is not a number; write one from 0.0 to {top}, e.g. {example!r}"
    if not 0.0 <= value <= top:
        return f"{text} is not within 0.0 to {top}; use e.g. {example!r}"
    return value


def embedding_header_problems(headers: Mapping[str, str], provider: str, field: str) -> list[Problem]:
    """Extra embedding headers: ``openai`` only, valid names, none the gateway sets, no credential."""
    if not headers:
        return []
    if provider != "openai":
        return [
            Problem(field, "is only sent to an openai service; set embeddingProvider: openai or remove it")
        ]
    fix = (
        "these headers are plain text in the gateway's config: put the service's key in a Secret and "
        f"give it to the gateway as {API_KEY_ENV} (podTemplateSpec env valueFrom.secretKeyRef), sent "
        "as Authorization: Bearer"
    )
    return plain_header_problems(dict(sorted(headers.items())), field, fix)


def optimizer_setting_problems(
    *, service: str | None, provider: str, model: str | None, headers: Mapping[str, str], field: str
) -> list[Problem]:
    """What goes with what: an ``openai`` service needs its URL and model; headers as above."""
    problems = []
    if provider == "openai":
        if not service:
            problems.append(
                Problem(
                    f"{field}.embeddingService",
                    "is required with embeddingProvider: openai; set the service's base URL, e.g. "
                    "https://api.openai.com/v1",
                )
            )
        if not model:
            problems.append(
                Problem(
                    f"{field}.embeddingModel",
                    "is required with embeddingProvider: openai; name the model, e.g. text-embedding-3-small",
                )
            )
    problems += embedding_header_problems(headers, provider, f"{field}.embeddingHeaders")
    return problems


def embedding_service_problems(service: str | None, field: str) -> list[Problem]:
    """The operator's check of ``embeddingService``: the SSRF rules of remote URLs, with private and
    in-cluster hosts allowed (the usual home of an embedding service); loopback (the gateway pod itself),
    link-local, cloud metadata and the API server are refused. The gateway checks what the name resolves
    to before each request (:mod:`gateway.backends.ssrf`)."""
    if service is None:
        return []
    return remote_url_problems(service, f"{field}.embeddingService", allow_private=True)


def optimizer_problems(optimizer: Optimizer, base: str, *, with_server_ref: bool) -> list[Problem]:
    """A VirtualMCPServer's ``spec.config.optimizer`` (at ``base``): ``maxToolsToReturn``, the ratio and the
    threshold in ToolHive's ranges, a timeout above zero, the embedding service's settings consistent, and
    no ``openai`` with ``spec.embeddingServerRef`` (``with_server_ref``: its EmbeddingServer speaks TEI)."""
    problems = []
    most = optimizer.max_tools_to_return
    if most is not None and not 1 <= most <= 50:
        problems.append(Problem(f"{base}.maxToolsToReturn", f"{most} is not 1 to 50; use e.g. 8"))
    shares = {
        "hybridSearchSemanticRatio": optimizer.hybrid_search_semantic_ratio,
        "semanticDistanceThreshold": optimizer.semantic_distance_threshold,
    }
    for name, text in shares.items():
        share = parse_share(text, name) if text is not None else None
        if isinstance(share, str):
            problems.append(Problem(f"{base}.{name}", share))
    if duration_seconds(optimizer.embedding_service_timeout) <= 0:
        problems.append(
            Problem(f"{base}.embeddingServiceTimeout", "must be above zero; use e.g. 30s (the default)")
        )
    problems += embedding_service_problems(optimizer.embedding_service, base)
    if with_server_ref and optimizer.embedding_provider == "openai":
        problems.append(
            Problem(
                f"{base}.embeddingProvider",
                "openai cannot go with spec.embeddingServerRef, whose EmbeddingServer speaks the TEI API; "
                "remove embeddingServerRef and set embeddingService (openai), or use embeddingProvider: tei",
            )
        )
    return problems + optimizer_setting_problems(
        service=optimizer.embedding_service,
        provider=optimizer.embedding_provider,
        model=optimizer.embedding_model,
        headers=optimizer.embedding_headers or {},
        field=base,
    )
