"""The MCPToolConfig and MCPAuthzConfig controllers: ``Accepted`` (the ``Valid`` column) and
``status.configHash``.

Workloads referring to a config watch it through their reference index (``ref:toolConfig``,
``ref:authzConfig``) and re-render their proxy or gateway configuration when it changes; this controller
only reports whether the config is valid and the hash of its spec (the same hash the workloads copy into
``status.toolConfigHash`` / ``status.authzConfigHash``).
"""

from __future__ import annotations

from api.mcpauthzconfig import MCPAuthzConfig
from api.mcptoolconfig import MCPToolConfig
from api.notices import notices
from api.resource import CustomResource
from api.validation import parse_and_validate
from controller.core import Controller, ObjectKey, ReconcileContext, Resource, Result
from controller.core.manager import Manager
from controller.reconcilers.config_status import accepted_status, write_status
from controller.reconcilers.kinds import MCPAUTHZCONFIG, MCPTOOLCONFIG
from controller.reconcilers.settings import ReconcilerSettings
from controller.reconcilers.status import StatusBuilder


async def reconcile(key: ObjectKey, ctx: ReconcileContext) -> Result:
    return await reconcile_config(key, ctx, MCPTOOLCONFIG, MCPToolConfig, "the tool configuration is valid")


async def reconcile_authz(key: ObjectKey, ctx: ReconcileContext) -> Result:
    return await reconcile_config(key, ctx, MCPAUTHZCONFIG, MCPAuthzConfig, "the policies compile")


async def reconcile_config(
    key: ObjectKey,
    ctx: ReconcileContext,
    resource: Resource,
    model: type[CustomResource],
    valid: str,
) -> Result:
    """Accepted and configHash of one config object of ``resource`` (parsed as ``model``)."""
    raw = ctx.cache.get(resource, key.namespace, key.name)
    if raw is None:
        return Result.done()
    builder = StatusBuilder.of(raw)
    parsed, problems = parse_and_validate(raw)
    spec = getattr(parsed, "spec", None) if isinstance(parsed, model) else None
    found = notices(parsed) if spec is not None and parsed is not None else []
    status = accepted_status(builder, problems, spec, valid, found)
    await write_status(ctx, raw, status, builder)
    return Result.done()


def controller(manager: Manager, settings: ReconcilerSettings) -> Controller:
    """The MCPToolConfig controller (it reads nothing but the config itself)."""
    return Controller(name="mcptoolconfig", for_=MCPTOOLCONFIG, reconcile=reconcile)


def authz_controller(manager: Manager, settings: ReconcilerSettings) -> Controller:
    """The MCPAuthzConfig controller (it reads nothing but the config itself)."""
    return Controller(name="mcpauthzconfig", for_=MCPAUTHZCONFIG, reconcile=reconcile_authz)
