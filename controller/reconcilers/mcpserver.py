"""The MCPServer controller: read the cache, build the children, apply them, write status.

Reads only the cache; writes go through the core ``Applier`` (server-side apply that skips unchanged
bodies), so a converged MCPServer costs zero API writes per reconcile.
"""

from __future__ import annotations

from typing import Any

from api.conditions import ACCEPTED, READY, RESOLVED_REFS
from api.mcpexternalauthconfig import MCPExternalAuthConfig
from api.mcpserver import MCPServer
from api.mcptoolconfig import MCPToolConfig
from api.problems import format_problems
from api.validation import parse_and_validate
from controller.core import (
    CONFIGMAP,
    DEPLOYMENT,
    ROLE,
    ROLEBINDING,
    SECRET,
    SERVICE,
    SERVICEACCOUNT,
    STATEFULSET,
    Controller,
    ObjectKey,
    ReconcileContext,
    Resource,
    Result,
    is_being_deleted,
    owner_reference,
    strip_pod_spec,
)
from controller.core.manager import Manager
from controller.reconcilers import mcpserver_build as build
from controller.reconcilers.children import CONFIG_HASH_ANNOTATION, JSON, spec_hash
from controller.reconcilers.kinds import MCPEXTERNALAUTHCONFIG, MCPSERVER
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
from controller.reconcilers.status import (
    PENDING,
    RUNNING,
    STOPPED,
    TERMINATING,
    StatusBuilder,
    invalid_status,
    newest,
    workload_state,
)
from controller.reconcilers.writes import (
    CONFLICT_RETRY_SECONDS,
    announce_rollout,
    delete_stale,
    emit,
    name_conflicts,
)

OWNED: tuple[Resource, ...] = (DEPLOYMENT, STATEFULSET, SERVICE, CONFIGMAP, SERVICEACCOUNT, ROLE, ROLEBINDING)
STDIO_CAPPED = "StdioReplicaCapped"


class MCPServerReconciler:
    """``reconcile(key, ctx)`` for MCPServer objects."""

    def __init__(self, settings: ReconcilerSettings) -> None:
        self.settings = settings

    def controller(self, manager: Manager) -> Controller:
        cache = manager.cache
        register_workload_indexes(cache, MCPSERVER)
        cache.set_transform(SECRET, strip_secret_values)
        cache.set_transform(DEPLOYMENT, strip_pod_spec)  # the reconcilers read no workload's pod spec
        cache.set_transform(STATEFULSET, strip_pod_spec)
        cache.add_index(MCPEXTERNALAUTHCONFIG, SECRET_INDEX, index_auth_config_secrets)
        return Controller(
            name="mcpserver",
            for_=MCPSERVER,
            reconcile=self.reconcile,
            owns=list(OWNED),
            watches=[*referrer_watches(cache, MCPSERVER), secret_to_auth_referrers(cache, MCPSERVER)],
        )

    async def reconcile(self, key: ObjectKey, ctx: ReconcileContext) -> Result:
        raw = ctx.cache.get(MCPSERVER, key.namespace, key.name)
        if raw is None:
            return Result.done()  # deleted: the garbage collector removes the children
        meta = raw.get("metadata") or {}
        generation = int(meta.get("generation") or 0)
        previous: JSON = raw.get("status") or {}
        if is_being_deleted(raw):
            if previous.get("phase") != TERMINATING:
                await ctx.applier.apply_status(raw, {**_keep(previous), "phase": TERMINATING})
            return Result.done()

        parsed, problems = parse_and_validate(raw)
        if problems or not isinstance(parsed, MCPServer):
            message = format_problems(problems)
            status, events = invalid_status(previous, generation, message)
            await ctx.applier.apply_status(raw, status)
            await emit(ctx, raw, events)
            return Result.done()  # terminal until the spec changes (the next generation re-enqueues)

        server = parsed
        resolved = resolve(ctx.cache, key.namespace, raw.get("spec") or {})
        missing = resolved.missing
        tool_config = parse_ref(MCPToolConfig, resolved.tool_config, "spec.toolConfigRef.name", missing)
        external_auth = resolve_external_auth(
            ctx.cache,
            key.namespace,
            resolved,
            inbound_auth=server.spec.oidc_config is not None,
            missing=missing,
        )
        desired: list[JSON] | None = None
        if not [m for m in missing if m.reason != "GroupNotFound"]:
            try:
                desired = build.build_children(
                    server, owner_reference(raw), self.settings, tool_config, external_auth
                )
            except ValueError as exc:  # the auth config passed its own checks but the runtime refuses it
                missing.append(invalid_auth(external_auth, str(exc)))
        conflicts = []
        if desired is not None:
            conflicts = name_conflicts(ctx, desired, str(meta.get("uid")), f"MCPServer '{key.name}'")
            if conflicts:
                missing += conflicts
                desired = None
        applied: dict[str, JSON] = {}
        if desired is not None:
            digest = _config_digest(desired)
            await announce_rollout(ctx, raw, key.namespace, key.name, digest)
            # The children are independent objects: applied concurrently (they converge in any order).
            for child, result in zip(desired, await ctx.applier.apply_all(desired), strict=True):
                if result is not None:
                    applied[child["kind"]] = result
            await delete_stale(ctx, str(meta.get("uid")), desired, OWNED)

        status, events = self._status(
            server,
            ctx,
            previous=previous,
            missing=missing,
            tool_config=tool_config,
            external_auth=external_auth,
            applied=applied,
        )
        await ctx.applier.apply_status(raw, status)
        await emit(ctx, raw, events)
        return Result.requeue_after(CONFLICT_RETRY_SECONDS) if conflicts else Result.done()

    def _status(
        self,
        server: MCPServer,
        ctx: ReconcileContext,
        *,
        previous: JSON,
        missing: list[Missing],
        tool_config: MCPToolConfig | None,
        external_auth: MCPExternalAuthConfig | None,
        applied: dict[str, JSON],
    ) -> tuple[JSON, list[tuple[str, str, str]]]:
        names = build.Names(server.metadata.name or "")
        namespace = server.metadata.namespace
        generation = server.metadata.generation or 0
        builder = StatusBuilder(list(previous.get("conditions") or []), generation)
        builder.set(ACCEPTED, True, "Accepted", "the spec is valid")
        if missing:
            builder.set(RESOLVED_REFS, False, missing[0].reason, "; ".join(m.message for m in missing))
        else:
            builder.set(RESOLVED_REFS, True, "ResolvedRefs", "every referenced object exists")
        requested = server.spec.replicas
        if build.is_stdio(server) and requested is not None and requested > 1:
            builder.set(
                STDIO_CAPPED,
                True,
                "StdioTransportCapAt1",
                f"spec.replicas is {requested} but a stdio server runs one process: 1 proxy replica runs",
            )
        else:
            builder.remove(STDIO_CAPPED)
        # What this reconcile just applied is newer than the cache: judging from it gives the status the
        # next reconcile would compute, so the status is written once, not once per cache catch-up.
        proxy = workload_state(
            newest(ctx.cache.get(DEPLOYMENT, namespace, names.proxy), applied.get("Deployment")), "Deployment"
        )
        backend = workload_state(
            newest(ctx.cache.get(STATEFULSET, namespace, names.server), applied.get("StatefulSet")),
            "StatefulSet",
        )
        url = build.service_url(server, self.settings)
        if server.spec.replicas == 0:
            phase, message = STOPPED, "scaled to zero replicas (spec.replicas is 0)"
            builder.set(READY, False, "Stopped", message)
        elif missing:
            phase, message = (
                PENDING,
                "waiting for referenced objects: " + "; ".join(m.message for m in missing),
            )
            builder.set(READY, False, "RefsNotResolved", message)
        elif proxy.ready and backend.ready:
            phase, message = RUNNING, f"serving at {url}"
            builder.set(READY, True, "Available", message)
        else:
            detail = proxy.detail if not proxy.ready else backend.detail
            phase, message = PENDING, detail
            builder.set(READY, False, "Unavailable", detail, event=bool(get_ready_true(previous)))
        status: JSON = {
            "phase": phase,
            "message": message,
            "url": url,
            "readyReplicas": proxy.ready_replicas,
            "observedGeneration": generation,
            "conditions": builder.conditions,
        }
        if tool_config is not None:
            status["toolConfigHash"] = spec_hash(tool_config.spec)
        if external_auth is not None:
            status["externalAuthConfigHash"] = spec_hash(external_auth.spec)
        return status, builder.events


def get_ready_true(previous: JSON) -> bool:
    return any(c.get("type") == READY and c.get("status") == "True" for c in previous.get("conditions") or [])


def _keep(previous: JSON) -> JSON:
    return {k: v for k, v in previous.items() if k in ("conditions", "url", "observedGeneration")}


def _config_digest(desired: list[JSON]) -> str:
    for obj in desired:
        if obj["kind"] == "Deployment":
            return str(obj["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION])
    raise ValueError("no proxy Deployment among the desired children")


def register(manager: Manager, settings: ReconcilerSettings | None = None) -> Any:
    """Add the MCPServer controller to ``manager``."""
    reconciler = MCPServerReconciler(settings or ReconcilerSettings.from_env())
    return manager.add_controller(reconciler.controller(manager))
