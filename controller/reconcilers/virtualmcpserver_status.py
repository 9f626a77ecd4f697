"""Status of a VirtualMCPServer (pure): phase, conditions, url, backendCount and ``discoveredBackends``.

Ownership of the status is split between two field managers (server-side apply):

- the operator (``mcp-operator``) owns ``phase``, ``message``, ``url``, ``readyReplicas``,
  ``observedGeneration``, ``conditions``, ``backendCount`` and, in each ``discoveredBackends[]`` item (a
  map list keyed by ``name``), the keys ``name``, ``kind`` and ``url``;
- the gateway's health writer owns the health keys of each item: ``status``, ``message``,
  ``lastHealthCheck`` and the circuit's ``circuitBreakerState``, ``circuitLastChanged`` and
  ``consecutiveFailures`` (:data:`GATEWAY_OWNED`). The operator never sends them, so its applies neither
  overwrite nor take them over; it only reads them (from the cache) to decide Degraded and backendCount.
  Until a health is written the API server's default ``status: unknown`` shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from api.conditions import READY, RESOLVED_REFS
from api.problems import Problem
from controller.reconcilers.children import JSON
from controller.reconcilers.refs import Missing
from controller.reconcilers.status import PENDING, StatusBuilder, WorkloadState, accept
from controller.reconcilers.virtualmcpserver_build import Member

READY_PHASE, DEGRADED = "Ready", "Degraded"
GATEWAY_OWNED = (
    "status",
    "message",
    "lastHealthCheck",
    "circuitBreakerState",
    "circuitLastChanged",
    "consecutiveFailures",
)
"""Keys of ``discoveredBackends[]`` items written by the gateway, never by the operator."""
DOWN = frozenset({"unavailable", "unauthenticated"})
"""Health values of a backend that cannot serve."""
UNHEALTHY = DOWN | {"degraded"}

Events = list[tuple[str, str, str]]


@dataclass(frozen=True)
class Observed:
    """What the reconciler found in the cache for one VirtualMCPServer."""

    group: str
    group_found: bool
    group_ready: bool
    members: Sequence[Member] = ()
    backends: frozenset[str] = frozenset()
    """Names of the members rendered into the ConfigMap."""
    missing: Sequence[Missing] = field(default_factory=list)
    """Unresolved references (the group, outbound auth configs, tool configs)."""
    gateway: WorkloadState = field(
        default_factory=lambda: WorkloadState(False, False, 0, "Deployment not created yet")
    )
    auth_blocked: Sequence[Missing] = ()
    """Why the inbound authentication cannot be rendered (``incomingAuth.oidcConfigRef``): nothing is
    deployed or rolled until it resolves."""
    oidc_config_hash: str | None = None
    """``configHash`` of the MCPOIDCConfig the rendered gateway uses."""


def reported_health(previous: JSON) -> dict[str, str]:
    """Backend name -> health as the gateway last wrote it (``unknown`` when nothing was written)."""
    health = {}
    for item in previous.get("discoveredBackends") or []:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            health[item["name"]] = str(item.get("status") or "unknown")
    return health


def discovered_backends(members: Sequence[Member]) -> list[JSON]:
    """The operator's keys of ``discoveredBackends``: every member, sorted by name (health excluded)."""
    items: list[JSON] = []
    seen: set[str] = set()
    for member in sorted(members, key=lambda m: (m.name, m.kind)):
        if member.name in seen:  # the list is keyed by name; the reconciler reports the clash
            continue
        seen.add(member.name)
        item: JSON = {"name": member.name, "kind": member.kind}
        if member.url:
            item["url"] = member.url
        items.append(item)
    return items


def vmcp_status(
    previous: JSON, generation: int, url: str | None, observed: Observed, found: list[Problem]
) -> tuple[JSON, Events]:
    """Phase Pending (group missing or not Ready, or no ready gateway pod), Ready, or Degraded (the
    gateway serves but some backend is down or could not be configured); ``found``: the spec's notices."""
    builder = StatusBuilder(list(previous.get("conditions") or []), generation)
    accept(builder, found, "the spec is valid", event=False)
    missing = list(observed.missing)
    if missing:
        builder.set(RESOLVED_REFS, False, missing[0].reason, "; ".join(m.message for m in missing))
    else:
        builder.set(RESOLVED_REFS, True, "ResolvedRefs", "every referenced object exists")
    health = reported_health(previous)
    down = sorted(name for name in observed.backends if health.get(name, "unknown") in UNHEALTHY)
    serving = [name for name in observed.backends if health.get(name, "unknown") not in DOWN]
    if not observed.group_found:
        phase, message = PENDING, "; ".join(m.message for m in missing)
        builder.set(READY, False, "GroupNotFound", message, event=False)
    elif observed.auth_blocked:
        blocked = "; ".join(m.message for m in observed.auth_blocked)
        phase, message = PENDING, f"not deployed until its inbound authentication resolves: {blocked}"
        builder.set(READY, False, "RefsNotResolved", message)
    elif not observed.group_ready:
        phase, message = PENDING, f"waiting for MCPGroup '{observed.group}' to be Ready"
        builder.set(READY, False, "GroupNotReady", message, event=False)
    elif not observed.gateway.ready:
        phase, message = PENDING, observed.gateway.detail
        builder.set(READY, False, "Unavailable", message, event=False)
    elif down or missing:
        problems = [f"backend '{name}' is {health[name]}" for name in down] + [m.message for m in missing]
        phase, message = DEGRADED, f"serving at {url}; " + "; ".join(problems)
        builder.set(READY, True, "BackendsDegraded", message)
    else:
        phase, message = READY_PHASE, f"serving {len(observed.backends)} backend(s) at {url}"
        builder.set(READY, True, "Available", message)
    members = observed.members if observed.group_found else ()
    status: JSON = {
        "phase": phase,
        "message": message,
        **({"url": url} if url else {}),
        "readyReplicas": observed.gateway.ready_replicas,
        "observedGeneration": generation,
        "conditions": builder.conditions,
        "backendCount": len(serving),
        "discoveredBackends": discovered_backends(members),
    }
    if observed.oidc_config_hash is not None:
        status["oidcConfigHash"] = observed.oidc_config_hash
    return status, builder.events
