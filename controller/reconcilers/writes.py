"""The writes every workload reconciler shares: pruning children the spec no longer asks for, Events."""

from __future__ import annotations

from collections.abc import Iterable

from controller.core import OWNER_INDEX, ReconcileContext, Resource
from controller.reconcilers.children import JSON

Events = list[tuple[str, str, str]]
"""(type, reason, message) tuples, as the status builders return them."""


async def delete_stale(
    ctx: ReconcileContext, uid: str, desired: list[JSON], owned: Iterable[Resource]
) -> None:
    """Delete children owned by ``uid`` that are not in ``desired`` (e.g. the Role after leaving stdio)."""
    wanted = {(obj["kind"], obj["metadata"]["name"]) for obj in desired}
    for resource in owned:
        for obj in ctx.cache.by_index(resource, OWNER_INDEX, uid):
            meta = obj.get("metadata") or {}
            if (resource.kind, meta.get("name")) not in wanted:
                await ctx.applier.delete(
                    resource, meta.get("namespace"), str(meta.get("name")), uid=meta.get("uid")
                )


async def emit(ctx: ReconcileContext, raw: JSON, events: Events) -> None:
    """Record ``events`` about ``raw`` (the recorder drops repeats)."""
    for type_, reason, message in events:
        await ctx.events.record(raw, type_, reason, message)
