"""The API versions this API server serves, asked once when the operator starts (discovery)."""

from __future__ import annotations

from dataclasses import replace

from controller.core import PODDISRUPTIONBUDGET, PODDISRUPTIONBUDGET_V1BETA1, KubeClient
from controller.reconcilers.settings import ReconcilerSettings


async def with_served_versions(settings: ReconcilerSettings, client: KubeClient) -> ReconcilerSettings:
    """``settings`` with the PodDisruptionBudget version the API server serves: ``policy/v1``, or
    ``policy/v1beta1`` on a server older than Kubernetes 1.21 (one discovery request)."""
    versions = await client.group_versions(PODDISRUPTIONBUDGET.group)
    if PODDISRUPTIONBUDGET.version not in versions and PODDISRUPTIONBUDGET_V1BETA1.version in versions:
        return replace(settings, disruption_budget=PODDISRUPTIONBUDGET_V1BETA1)
    return settings
