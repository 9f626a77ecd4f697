"""Deletion protection of a shared configuration while workloads refer to it (one algorithm for every
config kind that has it: MCPExternalAuthConfig, MCPOIDCConfig).

While an MCPServer, MCPRemoteProxy or VirtualMCPServer refers to the config, it carries the finalizer
``mcp-operator.dev/in-use``; a ``kubectl delete`` then leaves it Terminating with a ``DeletionBlocked``
condition naming the referrers, until the last one lets go. Unreferenced configs carry no finalizer, so
deleting them is immediate. The ``InUse`` condition says who refers to it.
"""

from __future__ import annotations

from controller.core import ReconcileContext, has_finalizer, is_being_deleted
from controller.reconcilers.children import JSON
from controller.reconcilers.status import StatusBuilder

IN_USE_FINALIZER = "mcp-operator.dev/in-use"
IN_USE = "InUse"
DELETION_BLOCKED = "DeletionBlocked"


async def hold_while_used(
    ctx: ReconcileContext, raw: JSON, builder: StatusBuilder, users: list[str], nobody: str
) -> bool:
    """Set ``InUse`` (``users``: ``Kind/name``; ``nobody``: the message when there are none) and keep the
    finalizer while used. Returns True when the object is being deleted and was just released: the
    caller writes nothing more (the API server removes it)."""
    if users:
        builder.set(IN_USE, True, "Referenced", "used by " + ", ".join(users), event=False)
    else:
        builder.set(IN_USE, False, "Unreferenced", nobody, event=False)
    if is_being_deleted(raw):
        if not users:
            await ctx.applier.remove_finalizer(raw, IN_USE_FINALIZER)
            return True
        builder.set(
            DELETION_BLOCKED,
            True,
            "InUse",
            f"deletion waits until no object refers to it; still used by {', '.join(users)}",
        )
        return False
    builder.remove(DELETION_BLOCKED)
    if users:
        await ctx.applier.add_finalizer(raw, IN_USE_FINALIZER)
    elif has_finalizer(raw, IN_USE_FINALIZER):
        await ctx.applier.remove_finalizer(raw, IN_USE_FINALIZER)
    return False
