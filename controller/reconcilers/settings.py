"""Operator-wide settings of the MCP reconcilers (environment variables, set by the Helm chart)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from controller.core.resources import PODDISRUPTIONBUDGET, Resource

DEFAULT_PROXY_IMAGE = "ghcr.io/mcp-operator/mcp-operator:0.1.0"


@dataclass(frozen=True)
class ReconcilerSettings:
    """What the builders need beyond the custom resource itself."""

    proxy_image: str = DEFAULT_PROXY_IMAGE
    """Image of the proxy and gateway pods (the operator's own image; env ``MCP_OPERATOR_PROXY_IMAGE``)."""
    proxy_image_pull_policy: str = "IfNotPresent"
    """Pull policy of that image (env ``MCP_OPERATOR_PROXY_IMAGE_PULL_POLICY``)."""
    cluster_domain: str = "cluster.local"
    """DNS suffix used in ``status.url`` (env ``MCP_OPERATOR_CLUSTER_DOMAIN``)."""
    redis_recheck_seconds: float = 30.0
    """How often the operator asks a workload's Redis whether it answers, while it does (env
    ``MCP_OPERATOR_REDIS_RECHECK_SECONDS``); a sixth of it while it does not, so recovery shows soon."""
    disruption_budget: Resource = PODDISRUPTIONBUDGET
    """The PodDisruptionBudget version the API server serves (``policy/v1``, or ``v1beta1`` before
    Kubernetes 1.21), found when the operator starts (``controller.reconcilers.discovery``)."""

    @classmethod
    def from_env(cls) -> ReconcilerSettings:
        env = os.environ.get
        return cls(
            proxy_image=env("MCP_OPERATOR_PROXY_IMAGE", DEFAULT_PROXY_IMAGE),
            proxy_image_pull_policy=env("MCP_OPERATOR_PROXY_IMAGE_PULL_POLICY", "IfNotPresent"),
            cluster_domain=env("MCP_OPERATOR_CLUSTER_DOMAIN", "cluster.local"),
            redis_recheck_seconds=float(env("MCP_OPERATOR_REDIS_RECHECK_SECONDS", "30")),
        )
