"""ToolHive's ``sessionStorage`` and ``rateLimiting`` as CRD fields, the ``podDisruptionBudget`` option,
and their rules.

The schema keeps the values loose (a limit is an integer, a window a string) so that a bad value
reaches the operator, which refuses the object with ``Accepted=False`` naming the field, instead of
the API server refusing it with a message about the schema. The rules run the values through the
data plane's own config models (:mod:`api.scaling_config`): one validation for both. The password is
a Secret key; it reaches the pods as an environment variable, never through a ConfigMap.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError

from api.base import CRDModel
from api.common import SecretKeyRef, SessionAffinity
from api.problems import Problem, problems_from_validation_error
from api.scaling_config import RateLimitConfig, SessionStorageConfig

__all__ = [
    "PodDisruptionBudgetSpec",
    "RateLimitBucket",
    "RateLimiting",
    "SessionAffinity",
    "SessionStorage",
    "ToolRateLimit",
    "disruption_budget_problems",
    "scaling_problems",
]

_PERCENT = re.compile(r"^(100|[1-9]?[0-9])%\Z")
_INT_OR_PERCENT = Field(default=None, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True})
"""A count or a percentage, kept in the schema as any value: the rules below check it (see api.schema)."""


class SessionStorage(CRDModel):
    """Where client sessions live: each pod's memory (one replica), or Redis shared by every replica."""

    provider: Literal["memory", "redis"]
    """``memory`` (each pod its own sessions) or ``redis`` (a session continues on any replica)."""
    address: str | None = None
    """``host:port`` of Redis; required with ``provider: redis``."""
    db: int | None = Field(default=None, json_schema_extra={"format": "int32"})
    """Redis database number (0-15); default 0."""
    key_prefix: str | None = None
    """Prepended to every Redis key (several workloads can share one Redis)."""
    password_ref: SecretKeyRef | None = None
    """A Secret key holding the Redis password (exposed to the pods as an environment variable)."""


class RateLimitBucket(CRDModel):
    """A token bucket: ``maxTokens`` calls at once (the burst), refilled evenly over ``refillPeriod``."""

    max_tokens: int = Field(json_schema_extra={"format": "int32"})
    """Bucket capacity (at least 1): the burst, and the calls admitted per ``refillPeriod``."""
    refill_period: str
    """Time to refill the bucket from empty, e.g. ``1m0s``, ``30s``, ``1h``."""


class ToolRateLimit(CRDModel):
    """Limits of one tool, on top of the server-wide ones."""

    name: str
    """The tool's name as clients call it."""
    shared: RateLimitBucket | None = None
    """One bucket for every caller of this tool."""
    per_user: RateLimitBucket | None = None
    """One bucket per caller of this tool."""


class RateLimiting(CRDModel):
    """Token-bucket limits on ``tools/call``; over a limit a call gets HTTP 429 with ``Retry-After``."""

    shared: RateLimitBucket | None = None
    """One bucket for every caller."""
    per_user: RateLimitBucket | None = None
    """One bucket per caller: the token's subject with inbound OIDC, else the client address."""
    tools: Annotated[
        list[ToolRateLimit] | None,
        Field(json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}),
    ] = None
    """Per-tool limits; a call must pass both the server-wide and its tool's limits."""
    failure_mode: Literal["open", "closed"] | None = None
    """While Redis does not answer: ``open`` admits calls, ``closed`` refuses them with 429. Default:
    closed when a per-user limit is set, open otherwise. (Not in ToolHive, which always admits.)"""


class PodDisruptionBudgetSpec(CRDModel):
    """A PodDisruptionBudget over the front pods (proxy or gateway): how many a voluntary disruption
    (a node drain, a cluster upgrade) may take down at once. Set one of the two fields."""

    min_available: Any = _INT_OR_PERCENT
    """Pods that must stay available: a count (``1``) or a percentage of the replicas (``50%``)."""
    max_unavailable: Any = _INT_OR_PERCENT
    """Pods that may be down at once: a count (``1``) or a percentage of the replicas (``25%``)."""


def disruption_budget_problems(
    budget: PodDisruptionBudgetSpec | None, *, stdio: bool = False
) -> list[Problem]:
    """``spec.podDisruptionBudget``'s problems. A stdio proxy runs exactly one pod, over which any budget
    either protects nothing or (``minAvailable: 1``) blocks every node drain forever: refused."""
    field = "spec.podDisruptionBudget"
    if budget is None:
        return []
    if stdio:
        return [
            Problem(
                field,
                "a stdio server's proxy runs exactly one pod, and a PodDisruptionBudget over one pod would "
                "block node drains forever: remove podDisruptionBudget, or serve the server over "
                "spec.transport streamable-http (or sse) with spec.replicas of 2 or more",
            )
        ]
    values = {"minAvailable": budget.min_available, "maxUnavailable": budget.max_unavailable}
    given = {name: value for name, value in values.items() if value is not None}
    if len(given) != 1:
        return [
            Problem(
                field,
                "set exactly one of minAvailable and maxUnavailable (a PodDisruptionBudget takes one), "
                f"not {' and '.join(given) if given else 'neither'}",
            )
        ]
    ((name, value),) = given.items()
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            return [Problem(f"{field}.{name}", f"is {value}; write a count of 0 or more, or a percentage")]
    elif not isinstance(value, str) or not _PERCENT.match(value):
        return [
            Problem(f"{field}.{name}", f"{value!r} is neither a count nor a percentage; write e.g. 1 or 50%")
        ]
    return []


def scaling_problems(
    storage: SessionStorage | None,
    limits: RateLimiting | None,
    *,
    storage_field: str = "spec.sessionStorage",
    limits_field: str = "spec.rateLimiting",
) -> list[Problem]:
    """The values the data plane would refuse, each naming its field and the fix."""
    problems: list[Problem] = []
    if storage is not None:
        data = storage.model_dump(by_alias=True, exclude_none=True, exclude={"password_ref"})
        try:
            SessionStorageConfig.model_validate(data)
        except ValidationError as error:
            problems += problems_from_validation_error(error, storage_field)
    if limits is not None:
        try:
            RateLimitConfig.model_validate(limits.model_dump(by_alias=True, exclude_none=True))
        except ValidationError as error:
            problems += problems_from_validation_error(error, limits_field)
    return problems
