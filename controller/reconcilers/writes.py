"""The writes every workload reconciler shares: pruning children the spec no longer asks for, Events."""

from __future__ import annotations

from collections.abc import Iterable

from controller.core import DEPLOYMENT, NORMAL, OWNER_INDEX, ReconcileContext, Resource
from controller.reconcilers.children import CONFIG_HASH_ANNOTATION, JSON

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


async def announce_rollout(
    ctx: ReconcileContext, raw: JSON, namespace: str, deployment: str, digest: str
) -> None:
    """An Event when the Deployment's config hash is about to change (its pods roll)."""
    current = ctx.cache.get(DEPLOYMENT, namespace, deployment)
    if current is None:
        return
    template = ((current.get("spec") or {}).get("template") or {}).get("metadata") or {}
    old = (template.get("annotations") or {}).get(CONFIG_HASH_ANNOTATION)
    if old and old != digest:
        await ctx.events.record(
            raw, NORMAL, "ProxyConfigChanged", f"proxy configuration changed ({old} -> {digest}); rolling out"
        )
