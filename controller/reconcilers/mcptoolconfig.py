"""The MCPToolConfig controller: ``Accepted`` (the ``Valid`` column) and ``status.configHash``.

Workloads referring to a MCPToolConfig watch it through the ``ref:toolConfig`` index and re-render their
proxy configuration when it changes; this controller only reports whether the filter is valid and the
hash of its spec (the same hash the workloads copy into ``status.toolConfigHash``).
"""

from __future__ import annotations

from api.mcptoolconfig import MCPToolConfig
from api.validation import parse_and_validate
from controller.core import Controller, ObjectKey, ReconcileContext, Result
from controller.core.manager import Manager
from controller.reconcilers.children import JSON
from controller.reconcilers.config_status import accepted_status, write_status
from controller.reconcilers.kinds import MCPTOOLCONFIG
from controller.reconcilers.settings import ReconcilerSettings
from controller.reconcilers.status import StatusBuilder


async def reconcile(key: ObjectKey, ctx: ReconcileContext) -> Result:
    raw = ctx.cache.get(MCPTOOLCONFIG, key.namespace, key.name)
    if raw is None:
        return Result.done()
    generation = int((raw.get("metadata") or {}).get("generation") or 0)
    previous: JSON = raw.get("status") or {}
    builder = StatusBuilder(list(previous.get("conditions") or []), generation)
    parsed, problems = parse_and_validate(raw)
    spec = parsed.spec if isinstance(parsed, MCPToolConfig) else None
    status = accepted_status(builder, problems, spec, "the tool configuration is valid")
    await write_status(ctx, raw, status, builder)
    return Result.done()


def controller(manager: Manager, settings: ReconcilerSettings) -> Controller:
    """The MCPToolConfig controller (it reads nothing but the config itself)."""
    return Controller(name="mcptoolconfig", for_=MCPTOOLCONFIG, reconcile=reconcile)
