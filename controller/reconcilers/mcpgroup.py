"""The MCPGroup controller: the group's status lists its members (MCPServers, MCPRemoteProxies and
MCPServerEntries).

A member is any object whose ``spec.groupRef.name`` names the group; membership is read from the
``ref:group`` cache index, never by scanning. A group has no children. A member's change re-enqueues the
group it names before and after the change, so re-pointing a member updates both groups.
"""

from __future__ import annotations

from api.conditions import ACCEPTED, READY
from api.mcpgroup import MCPGroup
from api.problems import format_problems
from api.validation import parse_and_validate
from controller.core import Cache, Controller, ObjectKey, ReconcileContext, Resource, Result, Watch
from controller.core.manager import Manager
from controller.reconcilers.children import JSON
from controller.reconcilers.kinds import MCPGROUP, MCPREMOTEPROXY, MCPSERVER, MCPSERVERENTRY
from controller.reconcilers.refs import GROUP_INDEX, index_group, referenced
from controller.reconcilers.settings import ReconcilerSettings
from controller.reconcilers.status import StatusBuilder, invalid_status
from controller.reconcilers.writes import emit

READY_PHASE = "Ready"
MEMBER_KINDS: tuple[Resource, ...] = (MCPSERVER, MCPREMOTEPROXY, MCPSERVERENTRY)


def register_member_indexes(cache: Cache) -> None:
    """Index every member kind by the group it names (idempotent: the same function everywhere)."""
    for resource in MEMBER_KINDS:
        cache.add_index(resource, GROUP_INDEX, index_group)


def members(cache: Cache, resource: Resource, namespace: str, group: str) -> list[JSON]:
    """Cached ``resource`` objects whose ``spec.groupRef`` names ``namespace/group``, sorted by name."""
    found = cache.by_index(resource, GROUP_INDEX, f"{namespace}/{group}")
    return sorted(found, key=lambda o: str((o.get("metadata") or {}).get("name")))


group_of_member = referenced(index_group)
"""Watch mapper: the group a member names (before and after an edit)."""


def group_status(group: MCPGroup, previous: JSON, names: dict[str, list[str]]) -> JSON:
    """The status of a valid group with these members (pure); ``names``: member kind -> sorted names."""
    servers, proxies = names.get(MCPSERVER.kind, []), names.get(MCPREMOTEPROXY.kind, [])
    entries = names.get(MCPSERVERENTRY.kind, [])
    generation = group.metadata.generation or 0
    builder = StatusBuilder(list(previous.get("conditions") or []), generation)
    builder.set(ACCEPTED, True, "Accepted", "the spec is valid", event=False)
    message = (
        f"{len(servers)} MCPServer(s), {len(proxies)} MCPRemoteProxy(ies), {len(entries)} MCPServerEntry(ies)"
    )
    builder.set(READY, True, "Ready", message, event=False)
    return {
        "phase": READY_PHASE,
        "message": message,
        "servers": servers,
        "serverCount": len(servers),
        "remoteProxies": proxies,
        "remoteProxyCount": len(proxies),
        "entries": entries,
        "entryCount": len(entries),
        "observedGeneration": generation,
        "conditions": builder.conditions,
    }


class MCPGroupReconciler:
    """``reconcile(key, ctx)`` for MCPGroup objects."""

    def controller(self, manager: Manager) -> Controller:
        register_member_indexes(manager.cache)
        return Controller(
            name="mcpgroup",
            for_=MCPGROUP,
            reconcile=self.reconcile,
            watches=[Watch(resource, group_of_member) for resource in MEMBER_KINDS],
        )

    async def reconcile(self, key: ObjectKey, ctx: ReconcileContext) -> Result:
        raw = ctx.cache.get(MCPGROUP, key.namespace, key.name)
        if raw is None:
            return Result.done()
        previous: JSON = raw.get("status") or {}
        parsed, problems = parse_and_validate(raw)
        if problems or not isinstance(parsed, MCPGroup):
            generation = int((raw.get("metadata") or {}).get("generation") or 0)
            status, events = invalid_status(previous, generation, format_problems(problems))
            await ctx.applier.apply_status(raw, status)
            await emit(ctx, raw, events)
            return Result.done()
        names = {
            resource.kind: [_name(o) for o in members(ctx.cache, resource, key.namespace, key.name)]
            for resource in MEMBER_KINDS
        }
        await ctx.applier.apply_status(raw, group_status(parsed, previous, names))
        return Result.done()


def _name(obj: JSON) -> str:
    return str((obj.get("metadata") or {}).get("name"))


def controller(manager: Manager, settings: ReconcilerSettings) -> Controller:
    """The MCPGroup controller (``settings`` unused: a group has no children)."""
    return MCPGroupReconciler().controller(manager)
