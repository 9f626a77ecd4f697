"""The writes every workload reconciler shares: pruning children the spec no longer asks for, Events,
and the check that a child's name is not already another controller's object."""

from __future__ import annotations

from collections.abc import Iterable

from api.podtemplate import CONFIG_HASH_ANNOTATION
from controller.core import DEPLOYMENT, NORMAL, OWNER_INDEX, ReconcileContext, Resource
from controller.reconcilers.children import JSON
from controller.reconcilers.refs import Missing

NAME_CONFLICT = "NameConflict"
CONFLICT_RETRY_SECONDS = 30.0
"""How soon a workload blocked by a name conflict looks again (the other owner's deletion removes its
children, but their events map to that owner, not to us)."""

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


def name_conflicts(ctx: ReconcileContext, desired: list[JSON], uid: str, who: str) -> list[Missing]:
    """Desired children whose name is taken by an object another controller owns (controller-runtime's
    rule: an object without a controller reference is adopted, one with another controller is not).

    Applying would either fail on every retry (two controller references) or take the object over;
    instead the workload reports the conflict (``who``: e.g. "MCPServer 'fetch'") and writes nothing.
    """
    out: list[Missing] = []
    for obj in desired:
        meta = obj["metadata"]
        current = ctx.cache.get(ctx.applier.resource_of(obj), meta.get("namespace"), meta["name"])
        refs = ((current or {}).get("metadata") or {}).get("ownerReferences") or []
        owner = next((r for r in refs if r.get("controller")), None)
        if owner is None or owner.get("uid") == uid:
            continue
        out.append(
            Missing(
                "metadata.name",
                NAME_CONFLICT,
                f"{obj['kind']} '{meta['name']}' already belongs to {owner.get('kind')} "
                f"'{owner.get('name')}': rename {who} or that {owner.get('kind')} "
                "(children are named after their owner)",
            )
        )
    return out
