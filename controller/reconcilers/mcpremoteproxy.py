"""The MCPRemoteProxy controller: read the cache, build the children, apply them, write status.

Reads only the cache; writes go through the core ``Applier`` (server-side apply that skips unchanged
bodies), so a converged MCPRemoteProxy costs zero API writes per reconcile. A change of the referenced
MCPToolConfig, MCPExternalAuthConfig or of a Secret either of them names re-enqueues the proxy; the
re-rendered configuration has a new hash, which rolls the Deployment.
"""

from __future__ import annotations

from typing import Any

from api.conditions import ACCEPTED, READY, RESOLVED_REFS
from api.mcpexternalauthconfig import MCPExternalAuthConfig
from api.mcpremoteproxy import MCPRemoteProxy
from api.mcptoolconfig import MCPToolConfig
from api.problems import format_problems
from api.validation import parse_and_validate
from controller.core import (
    CONFIGMAP,
    DEPLOYMENT,
    SECRET,
    SERVICE,
    SERVICEACCOUNT,
    Controller,
    ObjectKey,
    ReconcileContext,
    Resource,
    Result,
    is_being_deleted,
    owner_reference,
)
from controller.core.manager import Manager
from controller.reconcilers import mcpremoteproxy_build as build
from controller.reconcilers.children import JSON, spec_hash
from controller.reconcilers.kinds import MCPEXTERNALAUTHCONFIG, MCPREMOTEPROXY
from controller.reconcilers.outbound import invalid_auth, resolve_external_auth
from controller.reconcilers.refs import (
    SECRET_INDEX,
    Missing,
    index_auth_config_secrets,
    parse_ref,
    referrer_watches,
    register_workload_indexes,
    resolve,
    secret_to_auth_referrers,
    strip_secret_values,
)
from controller.reconcilers.settings import ReconcilerSettings
from controller.reconcilers.status import PENDING, TERMINATING, StatusBuilder, invalid_status, workload_state
from controller.reconcilers.writes import (
    CONFLICT_RETRY_SECONDS,
    announce_rollout,
    delete_stale,
    emit,
    name_conflicts,
)

OWNED: tuple[Resource, ...] = (DEPLOYMENT, SERVICE, CONFIGMAP, SERVICEACCOUNT)
READY_PHASE = "Ready"  # MCPRemoteProxy's phase vocabulary: Pending, Ready, Failed, Terminating


class MCPRemoteProxyReconciler:
    """``reconcile(key, ctx)`` for MCPRemoteProxy objects."""

    def __init__(self, settings: ReconcilerSettings) -> None:
        self.settings = settings

    def controller(self, manager: Manager) -> Controller:
        cache = manager.cache
        register_workload_indexes(cache, MCPREMOTEPROXY)
        cache.add_index(MCPEXTERNALAUTHCONFIG, SECRET_INDEX, index_auth_config_secrets)
        cache.set_transform(SECRET, strip_secret_values)
        return Controller(
            name="mcpremoteproxy",
            for_=MCPREMOTEPROXY,
            reconcile=self.reconcile,
            owns=list(OWNED),
            watches=[
                *referrer_watches(cache, MCPREMOTEPROXY),
                secret_to_auth_referrers(cache, MCPREMOTEPROXY),
            ],
        )

    async def reconcile(self, key: ObjectKey, ctx: ReconcileContext) -> Result:
        raw = ctx.cache.get(MCPREMOTEPROXY, key.namespace, key.name)
        if raw is None:
            return Result.done()  # deleted: the garbage collector removes the children
        meta = raw.get("metadata") or {}
        generation = int(meta.get("generation") or 0)
        previous: JSON = raw.get("status") or {}
        if is_being_deleted(raw):
            if previous.get("phase") != TERMINATING:
                kept = {k: v for k, v in previous.items() if k in ("conditions", "url", "observedGeneration")}
                await ctx.applier.apply_status(raw, {**kept, "phase": TERMINATING})
            return Result.done()

        parsed, problems = parse_and_validate(raw)
        if problems or not isinstance(parsed, MCPRemoteProxy):
            status, events = invalid_status(previous, generation, format_problems(problems))
            await ctx.applier.apply_status(raw, status)
            await emit(ctx, raw, events)
            return Result.done()  # terminal until the spec changes (the next generation re-enqueues)

        proxy = parsed
        resolved = resolve(ctx.cache, key.namespace, raw.get("spec") or {})
        missing = resolved.missing
        tool_config = parse_ref(MCPToolConfig, resolved.tool_config, "spec.toolConfigRef.name", missing)
        external_auth = resolve_external_auth(
            ctx.cache,
            key.namespace,
            resolved,
            inbound_auth=proxy.spec.oidc_config is not None,
            missing=missing,
        )
        rendered: build.Rendered | None = None
        if not [m for m in missing if m.reason != "GroupNotFound"]:
            try:
                rendered = build.render_config(proxy, self.settings, tool_config, external_auth)
            except ValueError as exc:  # the auth config passed its own checks but the runtime refuses it
                missing.append(invalid_auth(external_auth, str(exc)))
        conflicts: list[Missing] = []
        if rendered is not None:
            desired = build.build_children(proxy, owner_reference(raw), self.settings, rendered)
            conflicts = name_conflicts(ctx, desired, str(meta.get("uid")), f"MCPRemoteProxy '{key.name}'")
            missing += conflicts
        if rendered is not None and not conflicts:
            await announce_rollout(ctx, raw, key.namespace, key.name, rendered.digest)
            for child in desired:
                await ctx.applier.apply(child)
            await delete_stale(ctx, str(meta.get("uid")), desired, OWNED)

        status, events = self._status(
            proxy,
            ctx,
            previous=previous,
            missing=missing,
            tool_config=tool_config,
            external_auth=external_auth,
        )
        await ctx.applier.apply_status(raw, status)
        await emit(ctx, raw, events)
        return Result.requeue_after(CONFLICT_RETRY_SECONDS) if conflicts else Result.done()

    def _status(
        self,
        proxy: MCPRemoteProxy,
        ctx: ReconcileContext,
        *,
        previous: JSON,
        missing: list[Missing],
        tool_config: MCPToolConfig | None,
        external_auth: MCPExternalAuthConfig | None,
    ) -> tuple[JSON, list[tuple[str, str, str]]]:
        names = build.Names(proxy.metadata.name or "")
        generation = proxy.metadata.generation or 0
        builder = StatusBuilder(list(previous.get("conditions") or []), generation)
        builder.set(ACCEPTED, True, "Accepted", "the spec is valid")
        if missing:
            builder.set(RESOLVED_REFS, False, missing[0].reason, "; ".join(m.message for m in missing))
        else:
            builder.set(RESOLVED_REFS, True, "ResolvedRefs", "every referenced object exists")
        deployment = workload_state(
            ctx.cache.get(DEPLOYMENT, proxy.metadata.namespace, names.proxy), "Deployment"
        )
        url = build.service_url(proxy, self.settings)
        was_ready = any(
            c.get("type") == READY and c.get("status") == "True" for c in previous.get("conditions") or []
        )
        if proxy.spec.replicas == 0:
            phase, message = PENDING, "scaled to zero replicas (spec.replicas is 0)"
            builder.set(READY, False, "Stopped", message)
        elif missing:
            phase = PENDING
            message = "waiting for referenced objects: " + "; ".join(m.message for m in missing)
            builder.set(READY, False, "RefsNotResolved", message)
        elif deployment.ready:
            phase, message = READY_PHASE, f"serving {proxy.spec.remote_url} at {url}"
            builder.set(READY, True, "Available", message)
        else:
            phase, message = PENDING, deployment.detail
            builder.set(READY, False, "Unavailable", message, event=was_ready)
        status: JSON = {
            "phase": phase,
            "message": message,
            "url": url,
            "readyReplicas": deployment.ready_replicas,
            "observedGeneration": generation,
            "conditions": builder.conditions,
        }
        if tool_config is not None:
            status["toolConfigHash"] = spec_hash(tool_config.spec)
        if external_auth is not None:
            status["externalAuthConfigHash"] = spec_hash(external_auth.spec)
        return status, builder.events


def register(manager: Manager, settings: ReconcilerSettings | None = None) -> Any:
    """Add the MCPRemoteProxy controller to ``manager``."""
    reconciler = MCPRemoteProxyReconciler(settings or ReconcilerSettings.from_env())
    return manager.add_controller(reconciler.controller(manager))
